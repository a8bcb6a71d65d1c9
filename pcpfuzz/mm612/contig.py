"""v6.12 ``alloc_contig_range`` (modern-kernels §6.7) and ``get_hwpoison_page``, the
``zone_pcp_disable`` user of memory failure (§6.1)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from pcpfuzz.mm import contig as contig5
from pcpfuzz.mm.contig import run_alloc_contig_range, run_get_hwpoison_page
from pcpfuzz.mm.isolation import test_pages_isolated
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.mm6.contig import drain_after_isolation
from pcpfuzz.mm612.buddy import __isolate_free_page
from pcpfuzz.mm612.drain import drain_all_pages
from pcpfuzz.mm612.page_isolation import start_isolate_page_range, undo_isolate_page_range
from pcpfuzz.mm612.pageset import zone_pcp_disable, zone_pcp_enable
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def isolate_freepages_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """``isolate_freepages_range``: under ``zone->lock`` (a step of its own), 5.x's loop with
    v6.12 ``__isolate_free_page``: each free block in range split into order-0 pages for the
    caller."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    contig5.isolate_freepages_range(s, t, start, end, __isolate_free_page)
    spin_unlock(s, t, s.zone_lock)
    return None


def check_and_take_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """v6.12 ``alloc_contig_range``'s ``test_pages_isolated`` and, on success, the taking of the
    free pages (``isolate_freepages_range``, a ``zone->lock`` step of its own)."""
    ret = yield from test_pages_isolated(s, t, start, end)
    if ret:
        s.note("alloc_contig_range failed: busy page")
    else:
        yield from isolate_freepages_range(s, t, start, end)
        s.note("alloc_contig_range succeeded")
    return ret


def alloc_contig_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """v6.12 ``alloc_contig_range(start, end, MIGRATE_MOVABLE)``: 5.x's
    ``run_alloc_contig_range`` with the v6.12 callees: isolate, one non-forced
    ``drain_all_pages``, migrate, test, take the free pages, unisolate."""
    return (
        yield from run_alloc_contig_range(
            s,
            t,
            start,
            end,
            start_isolate_page_range,
            undo_isolate_page_range,
            partial(drain_after_isolation, drain_all_pages=drain_all_pages),
            check_and_take_range,
        )
    )


def get_hwpoison_page(s: System, t: Task) -> TaskGen:
    """v6.12 ``get_hwpoison_page`` (§6.1): 5.x's ``run_get_hwpoison_page`` with the
    v6.12 ``zone_pcp_disable`` and ``zone_pcp_enable``."""
    return (yield from run_get_hwpoison_page(s, t, zone_pcp_disable, zone_pcp_enable))
