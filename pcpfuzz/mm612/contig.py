"""v6.12 ``alloc_contig_range`` (modern-kernels §6.7) and ``get_hwpoison_page``, the
``zone_pcp_disable`` user of memory failure (§6.1)."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from pcpfuzz.mm import contig as contig5
from pcpfuzz.mm.contig import run_alloc_contig_range, run_get_hwpoison_page
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.mm6.contig import drain_after_isolation, run_check_and_take_range
from pcpfuzz.mm612.buddy import __isolate_free_page
from pcpfuzz.mm612.drain import drain_all_pages
from pcpfuzz.mm612.page_alloc import free_unref_page
from pcpfuzz.mm612.page_isolation import start_isolate_page_range, undo_isolate_page_range
from pcpfuzz.mm612.pageset import zone_pcp_disable, zone_pcp_enable
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def isolate_freepages_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """``isolate_freepages_range``: under ``zone->lock`` (a step of its own after the test),
    5.x's strict loop with v6.12 ``__isolate_free_page``; returns the pfn after the last
    block taken, or 0 when a page of the range was taken since the test."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    outer_end = contig5.isolate_freepages_range(s, t, start, end, __isolate_free_page)
    spin_unlock(s, t, s.zone_lock)
    return outer_end


check_and_take_range = partial(
    run_check_and_take_range, isolate=isolate_freepages_range, free_page=free_unref_page
)
"""v6.12 ``alloc_contig_range``'s test from ``outer_start``, the taking (a ``zone->lock``
step of its own), and the head and tail freed with the v6.12 ``free_unref_page``."""


def alloc_contig_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """v6.12 ``alloc_contig_range(start, end, MIGRATE_MOVABLE)``: 5.x's
    ``run_alloc_contig_range`` with the v6.12 callees: isolate, one non-forced
    ``drain_all_pages``, migrate, test from ``outer_start``, take the free pages, free the head
    and tail beyond the range, unisolate."""
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
