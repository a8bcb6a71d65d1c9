"""``alloc_contig_range`` (spec §12) and the v5.11 hwpoison user of ``zone_pcp_disable``
(spec §13)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pcpfuzz.constants import EBUSY, MT
from pcpfuzz.geometry import Geometry
from pcpfuzz.mm.buddy import __isolate_free_page
from pcpfuzz.mm.drain import drain_all_pages
from pcpfuzz.mm.isolation import (
    start_isolate_page_range,
    test_pages_isolated,
    undo_isolate_page_range,
)
from pcpfuzz.mm.migrate import do_migrate_range, scan_movable_pages
from pcpfuzz.mm.pageset import zone_pcp_disable, zone_pcp_enable
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System

MIGRATE_RETRIES = 5


def contig_alignment(geo: Geometry) -> int:
    """The alignment of the model's ``alloc_contig_range`` ranges before v6.1: ``max(
    MAX_ORDER_NR_PAGES, pageblock_nr_pages)`` (spec §12, §16 "Alignment")."""
    return max(geo.max_order_nr_pages, geo.pageblock_nr_pages)


def isolate_freepages_range(
    s: System,
    t: Task,
    start: int,
    end: int,
    isolate_free_page: Callable[[System, int, int], object] = __isolate_free_page,
) -> int:
    """``isolate_freepages_range``: under zone->lock take every free block in range out of the
    buddy (``isolate_free_page``: the kernel's ``__isolate_free_page``, 5.x's by default) and
    split it into order-0 pages for the caller; returns the pfn after the last. Strict, as the
    kernel's (``isolate_freepages_block(..., strict=true)``): if a page of the range is not in
    a free block any more, nothing is taken (the kernel releases what it took) and it returns
    0, which ``alloc_contig_range`` turns into -EBUSY."""
    pfn = start
    while pfn < end:
        if s.buddy_order[pfn] < 0:
            return 0
        pfn += 1 << s.buddy_order[pfn]
    pfn = start
    while pfn < end:
        order = s.buddy_order[pfn]
        isolate_free_page(s, pfn, order)
        for page in range(pfn, pfn + (1 << order)):
            s.allocate(page, 0, False, None, t)
        pfn += 1 << order
    return pfn


def __alloc_contig_migrate_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """``__alloc_contig_migrate_range``: up to ``MIGRATE_RETRIES`` passes that each migrate
    from the first movable page of the range, until none is left."""
    for _ in range(MIGRATE_RETRIES):
        yield None
        pfn = scan_movable_pages(s, start, end)
        if pfn is None:
            break
        yield from do_migrate_range(s, t, pfn, end)
    return None


def run_alloc_contig_range(
    s: System,
    t: Task,
    start: int,
    end: int,
    start_isolate_page_range: Callable[[System, Task, int, int, MT], TaskGen],
    undo_isolate_page_range: Callable[[System, Task, int, int, MT], TaskGen],
    drain: Callable[[System, Task], TaskGen],
    take: Callable[[System, Task, int, int], TaskGen],
) -> TaskGen:
    """``alloc_contig_range(start, end, MIGRATE_MOVABLE)`` (5.x spec §12; 6.1/6.12
    modern-kernels §6.7) with a version's callees: isolate, ``drain`` (the drain after the
    isolation, if the version has one), ``__alloc_contig_migrate_range``, then ``take`` (the
    test and the taking of the free pages, returning the test's result), unisolate."""
    ret = yield from start_isolate_page_range(s, t, start, end, MT.MOVABLE)
    if ret:
        s.note("alloc_contig_range failed: isolation")
        return EBUSY
    s.isolation_begin(t, start, end, "contig")
    yield from drain(s, t)
    yield from __alloc_contig_migrate_range(s, t, start, end)
    yield None
    ret = yield from take(s, t, start, end)
    s.isolation_end(t)
    yield None
    yield from undo_isolate_page_range(s, t, start, end, MT.MOVABLE)
    return ret


def isolate_user_drain(s: System, t: Task) -> TaskGen:
    """Patch 6's non-forced ``drain_all_pages`` after the isolation (none without it)."""
    if s.profile.isolate_user_drain:
        yield None
        yield from drain_all_pages(s, t)
    return None


def check_and_take_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """``test_pages_isolated``, then on success ``isolate_freepages_range`` in the same step."""
    ret = yield from test_pages_isolated(s, t, start, end)
    if ret:
        s.note("alloc_contig_range failed: busy page")
    else:
        isolate_freepages_range(s, t, start, end)
        s.note("alloc_contig_range succeeded")
    return ret


def alloc_contig_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """``alloc_contig_range(start, end, MIGRATE_MOVABLE)`` on a MAX_ORDER-aligned range:
    ``run_alloc_contig_range`` with the 5.x callees (after patch 6, one non-forced drain)."""
    return (
        yield from run_alloc_contig_range(
            s,
            t,
            start,
            end,
            start_isolate_page_range,
            undo_isolate_page_range,
            isolate_user_drain,
            check_and_take_range,
        )
    )


def run_get_hwpoison_page(
    s: System,
    t: Task,
    zone_pcp_disable: Callable[[System, Task], TaskGen],
    zone_pcp_enable: Callable[[System, Task], TaskGen],
) -> TaskGen:
    """``get_hwpoison_page`` as a user of ``zone_pcp_disable`` (5.11 spec §13; 6.1/6.12
    modern-kernels §6.1) with a version's disable and enable; the refcount work between them
    is one step that changes nothing."""
    yield from zone_pcp_disable(s, t)
    yield None
    yield from zone_pcp_enable(s, t)
    return 0


def get_hwpoison_page(s: System, t: Task) -> TaskGen:
    """v5.11 ``get_hwpoison_page`` (spec §13): ``run_get_hwpoison_page`` with 5.x's
    ``zone_pcp_disable`` and ``zone_pcp_enable``."""
    return (yield from run_get_hwpoison_page(s, t, zone_pcp_disable, zone_pcp_enable))
