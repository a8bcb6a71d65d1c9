"""Page isolation, mm/page_isolation.c (spec §9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pcpfuzz.constants import EBUSY, MT, mt_name
from pcpfuzz.mm.buddy import (
    __isolate_free_page,
    __mod_zone_freepage_state,
    __putback_isolated_page,
    _free_drift,
    counted_free_pages,
    get_pfnblock_migratetype,
    move_freepages_block,
    set_pageblock_migratetype,
)
from pcpfuzz.mm.drain import drain_all_pages
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def has_unmovable_pages(s: System, pfn: int, mt: int) -> int | None:
    """``has_unmovable_pages``: the first unmovable page of the pageblock, or None. A CMA
    pageblock counts only for a CMA caller; free pages (buddy, pcp, in flight) are skipped;
    in ZONE_MOVABLE everything allocated is assumed movable."""
    if get_pfnblock_migratetype(s, pfn) == MT.CMA:
        if mt == MT.CMA:
            return None
        s.note("has_unmovable_pages: a CMA pageblock for a non-CMA caller")
        return pfn
    if s.geo.movable_zone:
        return None
    for p in range(pfn, pfn + s.geo.pageblock_nr_pages):
        head = s.alloc_head[p]
        if head >= 0 and not s.allocated[head].movable:
            return p
    return None


def set_migratetype_isolate(s: System, t: Task, pfn: int, restore_mt: int) -> TaskGen:
    """``set_migratetype_isolate`` (spec §9.1): one zone->lock step; then, in v5.9/v5.10,
    ``drain_all_pages(zone)``."""
    if get_pfnblock_migratetype(s, pfn) == MT.ISOLATE:
        return EBUSY
    bad = has_unmovable_pages(s, pfn, restore_mt)
    if bad is not None:
        s.note("isolation failed: unmovable page")
        if s.tracing:
            s.klog(t.cpu, f"set_migratetype_isolate(pb {s.pb(pfn)}): unmovable pfn {bad}, EBUSY")
        return EBUSY
    old = get_pfnblock_migratetype(s, pfn)
    set_pageblock_migratetype(s, pfn, MT.ISOLATE)
    s.zone.nr_isolate_pageblock += 1
    counted = counted_free_pages(s, pfn)
    moved, _ = move_freepages_block(s, pfn, MT.ISOLATE)
    __mod_zone_freepage_state(s, -moved, old)
    _free_drift(s, counted - moved)
    if s.tracing:
        s.klog(
            t.cpu,
            f"set_migratetype_isolate(pb {s.pb(pfn)}): {mt_name(old)} -> ISOLATE, "
            f"{moved} free pages moved",
        )
    if s.profile.isolate_drains:
        yield None
        yield from drain_all_pages(s, t)
    return 0


def unset_migratetype_isolate(s: System, pfn: int, mt: int) -> None:
    """``unset_migratetype_isolate`` (spec §9.2), one zone->lock step, with the re-free trick
    for a free block of pageblock order or more whose buddy is not isolated."""
    if get_pfnblock_migratetype(s, pfn) != MT.ISOLATE:
        return
    order = s.buddy_order[pfn]
    merge = order >= s.geo.pageblock_order and (
        not s.profile.unisolate_skip_max_order or order < s.geo.max_order - 1
    )
    if merge:
        buddy = pfn ^ (1 << order)
        merge = 0 <= buddy < s.nr_pages and get_pfnblock_migratetype(s, buddy) != MT.ISOLATE
    unset_isolate_locked(s, pfn, order, mt, merge, __putback_isolated_page)


def unset_isolate_locked(
    s: System, pfn: int, order: int, mt: int, merge: bool, putback: Callable[..., None]
) -> None:
    """The part of ``unset_migratetype_isolate`` after the version's merge test: with
    ``merge``, the free block at ``pfn`` is taken out (``__isolate_free_page``) and ``putback``
    re-frees it once the pageblock is ``mt``; else the pageblock's free blocks move to ``mt``."""
    if merge:
        if s.buddy_mt[pfn] != MT.ISOLATE:
            # Split off a block another CPU took from a normal list during this undo
            # pass: counted free already, and counted again by the re-free.
            _free_drift(s, 1 << order)
        __isolate_free_page(s, pfn, order)
    else:
        counted = counted_free_pages(s, pfn)
        moved, _ = move_freepages_block(s, pfn, mt)
        __mod_zone_freepage_state(s, moved, mt)
        _free_drift(s, counted)
    set_pageblock_migratetype(s, pfn, mt)
    if merge:
        putback(s, pfn, order, mt)
        s.note("unisolation re-freed a block to merge it")
    s.zone.nr_isolate_pageblock -= 1


def start_isolate_page_range(s: System, t: Task, start: int, end: int, mt: int) -> TaskGen:
    """``start_isolate_page_range`` (spec §9.3): isolate each online pageblock; on the first
    failure, unisolate those done and return -EBUSY. Other CPUs run between pageblocks."""
    s.isolation_passes += 1
    ret = yield from _isolate_range(s, t, start, end, mt)
    s.isolation_passes -= 1
    return ret


def _isolate_range(s: System, t: Task, start: int, end: int, mt: int) -> TaskGen:
    step = s.geo.pageblock_nr_pages
    for pfn in range(start, end, step):
        if pfn != start:
            yield None
        if not s.pfn_online(pfn):
            continue
        ret = yield from set_migratetype_isolate(s, t, pfn, mt)
        if ret:
            for done in range(start, pfn, step):
                yield None
                if s.pfn_online(done):
                    unset_migratetype_isolate(s, done, mt)
            return EBUSY
    return 0


def undo_isolate_page_range(s: System, t: Task, start: int, end: int, mt: int) -> TaskGen:
    """``undo_isolate_page_range``: unisolate each online ISOLATE pageblock, one step each."""
    step = s.geo.pageblock_nr_pages
    s.isolation_passes += 1
    for pfn in range(start, end, step):
        if pfn != start:
            yield None
        if s.pfn_online(pfn) and get_pfnblock_migratetype(s, pfn) == MT.ISOLATE:
            unset_migratetype_isolate(s, pfn, mt)
    s.isolation_passes -= 1
    if s.tracing:
        s.klog(t.cpu, f"undo_isolate_page_range(pfn {start}-{end - 1}): {mt_name(mt)}")
    return None


def test_pages_isolated(s: System, t: Task, start: int, end: int) -> TaskGen:
    """``test_pages_isolated`` (spec §9.4): a lockless pageblock scan, then a zone->lock step
    that requires every page to be in a free buddy block."""
    online = False
    for pfn in range(start, end, s.geo.pageblock_nr_pages):
        if s.pfn_online(pfn):
            online = True
            if get_pfnblock_migratetype(s, pfn) != MT.ISOLATE:
                return EBUSY
    if not online:
        return EBUSY
    yield None
    pfn = start
    while pfn < end:
        order = s.buddy_order[pfn]
        if order < 0:
            break
        pfn += 1 << order
    if pfn < end:
        if s.tracing:
            s.klog(t.cpu, f"test_pages_isolated: pfn {pfn} is {s.where(pfn)}: EBUSY")
        return EBUSY
    return 0
