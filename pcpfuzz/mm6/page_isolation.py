"""v6.1 mm/page_isolation.c (modern-kernels §6.2-§6.4): ``set_migratetype_isolate`` holds
``zone->lock`` across two steps (type first, then the moves); ``start_isolate_page_range``
isolates the boundary pageblocks first (``isolate_single_pageblock``), then the middle."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.constants import EBUSY, MT, mt_name
from pcpfuzz.mm.buddy import (
    __isolate_free_page,
    __mod_zone_freepage_state,
    get_pfnblock_migratetype,
    move_freepages_block,
    page_is_buddy,
    set_pageblock_migratetype,
)
from pcpfuzz.mm.isolation import _free_drift, counted_free_pages, has_unmovable_pages
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.mm6.buddy import __free_one_page
from pcpfuzz.state import IRQ_OFF, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def set_migratetype_isolate(s: System, t: Task, pfn: int, mt: int) -> TaskGen:
    """v6.1 ``set_migratetype_isolate`` (§6.2): under ``zone->lock``, EBUSY if already ISOLATE
    or unmovable; else type := ISOLATE and ``nr_isolate_pageblock++`` (one step), then
    ``move_freepages_block`` and the counter (the next). No drain."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    busy = get_pfnblock_migratetype(s, pfn) == MT.ISOLATE
    if busy or has_unmovable_pages(s, pfn, mt) is not None:
        spin_unlock(s, t, s.zone_lock)
        s.note("isolation failed")
        return EBUSY
    old = get_pfnblock_migratetype(s, pfn)
    set_pageblock_migratetype(s, pfn, MT.ISOLATE)
    s.zone.nr_isolate_pageblock += 1
    yield IRQ_OFF
    counted = counted_free_pages(s, pfn)
    moved, _ = move_freepages_block(s, pfn, MT.ISOLATE)
    __mod_zone_freepage_state(s, -moved, old)
    _free_drift(s, counted - moved)
    spin_unlock(s, t, s.zone_lock)
    if s.tracing:
        s.klog(t.cpu, f"set_migratetype_isolate(pb {s.pb(pfn)}): {mt_name(old)} -> ISOLATE")
    return 0


def unset_migratetype_isolate(s: System, t: Task, pfn: int, mt: int) -> TaskGen:
    """v6.1 ``unset_migratetype_isolate`` (§6.2), one ``zone->lock`` step: a free block of
    order in [pageblock_order, MAX_ORDER - 1) whose buddy (``find_buddy_page_pfn``: a free
    block of the same order) is not ISOLATE is isolated and put back to merge; otherwise the
    pageblock's free blocks move to ``mt``."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    if get_pfnblock_migratetype(s, pfn) != MT.ISOLATE:
        spin_unlock(s, t, s.zone_lock)
        return None
    order = s.buddy_order[pfn]
    isolated_page = False
    if s.geo.pageblock_order <= order < s.geo.max_order - 1:
        buddy = pfn ^ (1 << order)
        if page_is_buddy(s, buddy, order) and get_pfnblock_migratetype(s, buddy) != MT.ISOLATE:
            if s.buddy_mt[pfn] != MT.ISOLATE:
                _free_drift(s, 1 << order)
            __isolate_free_page(s, pfn, order)
            isolated_page = True
    if not isolated_page:
        counted = counted_free_pages(s, pfn)
        moved, _ = move_freepages_block(s, pfn, mt)
        __mod_zone_freepage_state(s, moved, mt)
        _free_drift(s, counted)
    set_pageblock_migratetype(s, pfn, mt)
    if isolated_page:
        __free_one_page(s, pfn, order, mt, to_tail=True)  # __putback_isolated_page
        s.note("unisolation re-freed a block to merge it")
    s.zone.nr_isolate_pageblock -= 1
    spin_unlock(s, t, s.zone_lock)
    return None


def start_isolate_page_range(s: System, t: Task, start: int, end: int, mt: int) -> TaskGen:
    """v6.1 ``start_isolate_page_range`` (§6.3) for a pageblock-aligned range: the first
    pageblock, then the last (``isolate_single_pageblock``; the model's ranges are
    MAX_ORDER-aligned, so no free block straddles a boundary and ``split_free_page`` has
    nothing to split), then each middle one; on failure undo what was isolated."""
    step = s.geo.pageblock_nr_pages
    blocks = [pfn for pfn in range(start, end, step) if s.pfn_online(pfn)]
    order = blocks[:1] + blocks[-1:] if len(blocks) > 1 else blocks
    order += blocks[1:-1]
    s.isolation_passes += 1
    done: list[int] = []
    ret = 0
    for pfn in order:
        if done:
            yield None
        ret = yield from set_migratetype_isolate(s, t, pfn, mt)
        if ret:
            break
        done.append(pfn)
    if ret:
        for pfn in done:
            yield None
            yield from unset_migratetype_isolate(s, t, pfn, mt)
    s.isolation_passes -= 1
    return ret


def undo_isolate_page_range(s: System, t: Task, start: int, end: int, mt: int) -> TaskGen:
    """``undo_isolate_page_range``: unset each online ISOLATE pageblock, one step each."""
    s.isolation_passes += 1
    for pfn in range(start, end, s.geo.pageblock_nr_pages):
        if pfn != start:
            yield None
        if s.pfn_online(pfn) and get_pfnblock_migratetype(s, pfn) == MT.ISOLATE:
            yield from unset_migratetype_isolate(s, t, pfn, mt)
    s.isolation_passes -= 1
    return None
