"""v6.1 ``alloc_contig_range`` (modern-kernels §6.7) and the ``zone_pcp_disable`` user of
memory failure (§6.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pcpfuzz.constants import EBUSY
from pcpfuzz.geometry import Geometry
from pcpfuzz.mm.contig import (
    isolate_freepages_range,
    run_alloc_contig_range,
    run_get_hwpoison_page,
)
from pcpfuzz.mm.isolation import test_pages_isolated
from pcpfuzz.mm.pageset import zone_pcp_enable
from pcpfuzz.mm6.drain import drain_all_pages
from pcpfuzz.mm6.page_alloc import free_unref_page
from pcpfuzz.mm6.page_isolation import start_isolate_page_range, undo_isolate_page_range
from pcpfuzz.mm6.pageset import zone_pcp_disable
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def contig_alignment(geo: Geometry) -> int:
    """v6.1 ``alloc_contig_range`` ranges need only be pageblock-aligned (§6.3, §6.7; CMA's
    ``CMA_MIN_ALIGNMENT_PAGES`` is ``pageblock_nr_pages``)."""
    return geo.pageblock_nr_pages


def outer_start(s: System, start: int) -> int:
    """``alloc_contig_range``'s ``outer_start``: the head of a free block covering ``start``
    (orders below MAX_ORDER), else ``start``."""
    head, order = start, 0
    while s.buddy_order[head] < 0:
        order += 1
        if order >= s.geo.max_order:
            return start
        head &= ~((1 << order) - 1)
    if head != start and head + (1 << s.buddy_order[head]) <= start:
        return start
    return head


def free_contig_range(
    s: System,
    t: Task,
    pfn: int,
    nr_pages: int,
    free_page: Callable[[System, Task, int, int], TaskGen] = free_unref_page,
) -> TaskGen:
    """``free_contig_range``: ``__free_page`` of each page (the version's order-0 free,
    v6.1's by default)."""
    for page in range(pfn, pfn + nr_pages):
        s.release(page)
        yield None
        yield from free_page(s, t, page, 0)
    return None


def drain_after_isolation(
    s: System, t: Task, drain_all_pages: Callable[[System, Task], TaskGen] = drain_all_pages
) -> TaskGen:
    """6.1/6.12 ``alloc_contig_range``'s one non-forced ``drain_all_pages`` after the isolation
    (a step of its own first): the version's ``drain_all_pages`` (v6.1's by default)."""
    yield None
    yield from drain_all_pages(s, t)
    return None


def _isolate_in_this_step(s: System, t: Task, start: int, end: int) -> TaskGen:
    """v6.1: ``isolate_freepages_range`` in the step of the test that passed."""
    return isolate_freepages_range(s, t, start, end)
    yield


def run_check_and_take_range(
    s: System,
    t: Task,
    start: int,
    end: int,
    isolate: Callable[[System, Task, int, int], TaskGen] = _isolate_in_this_step,
    free_page: Callable[[System, Task, int, int], TaskGen] = free_unref_page,
) -> TaskGen:
    """6.1/6.12 ``alloc_contig_range``'s test from ``outer_start`` and, on success, the taking
    of the free pages (the version's ``isolate_freepages_range``: 0 when a page was taken
    meanwhile, then -EBUSY) and the freeing of head and tail beyond the range
    (``free_contig_range`` with the version's free)."""
    outer = outer_start(s, start)
    ret = yield from test_pages_isolated(s, t, outer, end)
    if ret:
        s.note("alloc_contig_range failed: busy page")
        return ret
    outer_end = yield from isolate(s, t, outer, end)
    if not outer_end:
        s.note("alloc_contig_range failed: a free page was taken after the test")
        return EBUSY
    s.note("alloc_contig_range succeeded")
    for pfn in (*range(outer, start), *range(end, outer_end)):
        s.allocated[pfn].holder = t.tid  # alloc_contig_range's until it frees them
    if outer != start:
        s.note("alloc_contig_range freed a head beyond the range")
    yield from free_contig_range(s, t, outer, start - outer, free_page)
    yield from free_contig_range(s, t, end, outer_end - end, free_page)
    return 0


def alloc_contig_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """v6.1 ``alloc_contig_range(start, end, MIGRATE_MOVABLE)`` on a pageblock-aligned range:
    5.x's ``run_alloc_contig_range`` with the v6.1 callees: isolate, one non-forced
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
            drain_after_isolation,
            run_check_and_take_range,
        )
    )


def get_hwpoison_page(s: System, t: Task) -> TaskGen:
    """v6.1 ``get_hwpoison_page`` / ``page_handle_poison`` (§6.1): 5.x's
    ``run_get_hwpoison_page`` with v6.1 ``zone_pcp_disable`` and 5.x's ``zone_pcp_enable``."""
    return (yield from run_get_hwpoison_page(s, t, zone_pcp_disable, zone_pcp_enable))
