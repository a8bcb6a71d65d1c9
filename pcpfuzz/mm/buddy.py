"""The buddy allocator core of mm/page_alloc.c (spec §3). Every function here runs under
``zone->lock`` and is atomic: none of them yields."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.constants import FALLBACKS, MT
from pcpfuzz.dirty import CACHED, FREECOUNT, PBMT, free_moved

if TYPE_CHECKING:
    from pcpfuzz.system import System


def get_pfnblock_migratetype(s: System, pfn: int) -> int:
    """``get_pfnblock_migratetype``: the pageblock's migratetype (a lockless read)."""
    return s.pageblock_mt[pfn >> s.geo.pageblock_order]


def set_pageblock_migratetype(s: System, pfn: int, mt: int) -> None:
    """``set_pageblock_migratetype``."""
    s.pageblock_mt[pfn >> s.geo.pageblock_order] = mt
    s.dirty |= PBMT


def __mod_zone_freepage_state(s: System, nr_pages: int, mt: int) -> None:
    """Spec §3.1: NR_FREE_PAGES, and NR_FREE_CMA_PAGES for CMA."""
    s.dirty |= FREECOUNT
    s.zone.nr_free_pages += nr_pages
    if mt == MT.CMA:
        s.zone.nr_free_cma_pages += nr_pages


def add_to_free_list(s: System, pfn: int, order: int, mt: int, tail: bool = False) -> None:
    """``add_to_free_list`` / ``add_to_free_list_tail``: set PageBuddy and the order (spec §3.2)."""
    free_moved(s, pfn, order, mt, 1)
    fl = s.zone.free_list[order][mt]
    if tail:
        fl.append(pfn)
    else:
        fl.insert(0, pfn)
    s.zone.nr_free[order] += 1
    s.buddy_order[pfn] = order
    s.buddy_mt[pfn] = mt


def move_to_free_list(s: System, pfn: int, order: int, mt: int) -> None:
    """``move_to_free_list``: to the head in v5.9, to the tail from v5.10 (spec §3.2)."""
    free_moved(s, pfn, order, s.buddy_mt[pfn], -1)
    free_moved(s, pfn, order, mt, 1)
    s.zone.free_list[order][s.buddy_mt[pfn]].remove(pfn)
    fl = s.zone.free_list[order][mt]
    if s.profile.fpi_to_tail:
        fl.append(pfn)
    else:
        fl.insert(0, pfn)
    s.buddy_mt[pfn] = mt


def del_page_from_free_list(s: System, pfn: int, order: int) -> None:
    """``del_page_from_free_list``: unlink and clear PageBuddy; no free-count change."""
    free_moved(s, pfn, order, s.buddy_mt[pfn], -1)
    s.zone.free_list[order][s.buddy_mt[pfn]].remove(pfn)
    s.zone.nr_free[order] -= 1
    s.buddy_order[pfn] = -1


def page_is_buddy(s: System, buddy: int, order: int) -> bool:
    """``page_is_buddy``: PageBuddy with that order, in the zone."""
    return 0 <= buddy < s.nr_pages and s.buddy_order[buddy] == order


def buddy_merge_likely(s: System, pfn: int, buddy_pfn: int, order: int) -> bool:
    """``buddy_merge_likely``: the next-higher buddy is free, so the block goes to the tail."""
    if order >= s.geo.max_order - 2 or not 0 <= buddy_pfn < s.nr_pages:
        return False
    combined = buddy_pfn & pfn
    higher_buddy = combined ^ (1 << (order + 1))
    return page_is_buddy(s, higher_buddy, order + 1)


def __free_one_page(s: System, pfn: int, order: int, mt: int, to_tail: bool = False) -> None:
    """``__free_one_page`` (spec §3.3): merge up, refusing to merge across an isolated pageblock
    boundary from pageblock_order up while the zone has isolated pageblocks."""
    max_order = s.geo.max_order
    if mt != MT.ISOLATE:
        __mod_zone_freepage_state(s, 1 << order, mt)
    limit = min(max_order - 1, s.geo.pageblock_order)
    buddy = pfn ^ (1 << order)
    while True:
        while order < limit:
            buddy = pfn ^ (1 << order)
            if not page_is_buddy(s, buddy, order):
                break
            del_page_from_free_list(s, buddy, order)
            pfn &= buddy
            order += 1
        else:
            if order < max_order - 1:
                if s.zone.nr_isolate_pageblock:
                    buddy = pfn ^ (1 << order)
                    bmt = get_pfnblock_migratetype(s, buddy) if buddy < s.nr_pages else mt
                    if mt != bmt and (mt == MT.ISOLATE or bmt == MT.ISOLATE):
                        break
                limit = order + 1
                continue
        break
    if not to_tail:
        to_tail = buddy_merge_likely(s, pfn, pfn ^ (1 << order), order)
    add_to_free_list(s, pfn, order, mt, tail=to_tail)


def free_one_page(s: System, pfn: int, order: int, mt: int, to_tail: bool = False) -> None:
    """``free_one_page`` (spec §3.4): re-read the pageblock's type when the zone has isolated
    pageblocks or the caller passed ISOLATE, then ``__free_one_page``."""
    if s.zone.nr_isolate_pageblock or mt == MT.ISOLATE:
        mt = get_pfnblock_migratetype(s, pfn)
    __free_one_page(s, pfn, order, mt, to_tail)


def expand(s: System, pfn: int, low: int, high: int, mt: int) -> None:
    """``expand``: split a block of order ``high`` down to ``low``, upper halves to the head."""
    while high > low:
        high -= 1
        add_to_free_list(s, pfn + (1 << high), high, mt)


def __rmqueue_smallest(s: System, order: int, mt: int) -> int | None:
    """``__rmqueue_smallest`` (spec §3.6): the head of the smallest non-empty ``mt`` list."""
    for current in range(order, s.geo.max_order):
        fl = s.zone.free_list[current][mt]
        if not fl:
            continue
        pfn = fl[0]
        del_page_from_free_list(s, pfn, current)
        expand(s, pfn, order, current, mt)
        s.cached_mt[pfn] = mt
        s.dirty |= CACHED
        return pfn
    return None


def can_steal_fallback(s: System, order: int, start_mt: int) -> bool:
    """``can_steal_fallback``."""
    pb_order = s.geo.pageblock_order
    return order >= pb_order // 2 or start_mt in (MT.RECLAIMABLE, MT.UNMOVABLE)


def find_suitable_fallback(s: System, order: int, start_mt: int) -> int:
    """``find_suitable_fallback``: the first fallback type with a free block of ``order``."""
    for fmt in FALLBACKS[start_mt]:
        if s.zone.free_list[order][fmt]:
            return fmt
    return -1


def move_freepages_block(s: System, pfn: int, mt: int) -> tuple[int, int]:
    """``move_freepages_block`` (spec §3.8): move every free block headed in ``pfn``'s pageblock
    to ``mt``; returns (pages moved, movable allocated pages seen)."""
    nr = s.geo.pageblock_nr_pages
    start = pfn & ~(nr - 1)
    moved = movable = 0
    p = start
    while p < start + nr:
        order = s.buddy_order[p]
        if order < 0:
            head = s.alloc_head[p]
            if head >= 0 and s.allocated[head].movable:
                movable += 1
            p += 1
            continue
        move_to_free_list(s, p, order, mt)
        p += 1 << order
        moved += 1 << order
    return moved, movable


def counted_free_pages(s: System, pfn: int) -> int:
    """Pages of the free blocks headed in ``pfn``'s pageblock that sit on a counted (not
    ISOLATE) freelist: what ``move_freepages_block`` moves that NR_FREE_PAGES already counts.
    The kernel assumes a pageblock's free blocks are all on its type's lists; in an undo window
    they need not be, and the difference is the NR_FREE_PAGES drift of ``known_free_drift``."""
    nr = s.geo.pageblock_nr_pages
    p = pfn & ~(nr - 1)
    end = p + nr
    counted = 0
    while p < end:
        order = s.buddy_order[p]
        if order < 0:
            p += 1
            continue
        if s.buddy_mt[p] != MT.ISOLATE:
            counted += 1 << order
        p += 1 << order
    return counted


def _free_drift(s: System, drift: int) -> None:
    """Ghost: NR_FREE_PAGES moved by ``drift`` pages away from the freelists, by a defect the
    kernel code has in every version (see ``docs/fidelity.md``)."""
    if drift:
        s.known_free_drift += drift
        s.dirty |= FREECOUNT
        s.note("known defect: NR_FREE_PAGES drift in an isolation undo window")


def _claim_pageblock(s: System, pfn: int, mt: int) -> None:
    """``set_pageblock_migratetype`` by a fallback steal. Neither claim checks for ISOLATE: in
    an isolation undo window a free block on a normal list can lie in a pageblock the pass has
    not reached yet, and its unset then finds no ISOLATE, so ``nr_isolate_pageblock`` leaks
    (the known defect E1 of ``docs/fidelity.md``, kept as ghost state)."""
    if get_pfnblock_migratetype(s, pfn) == MT.ISOLATE:
        s.known_isolate_drift += 1
        s.note("known defect: a fallback steal overwrote an ISOLATE pageblock")
    set_pageblock_migratetype(s, pfn, mt)


def steal_suitable_fallback(s: System, pfn: int, order: int, start_mt: int, whole: bool) -> None:
    """``steal_suitable_fallback``: claim the pageblock range of a block of pageblock order or
    more (``change_pageblock_range``); else, when it may steal the whole pageblock, move all of
    its free blocks (``move_freepages_block``) and claim it when at least half of it is free or
    alike; else move just this block to the requested type's list."""
    pb_order = s.geo.pageblock_order
    old_mt = get_pfnblock_migratetype(s, pfn)
    if order >= pb_order:
        for pb in range(pfn, pfn + (1 << order), 1 << pb_order):
            _claim_pageblock(s, pb, start_mt)
    elif whole:
        # The counters are left alone: blocks moved off the ISOLATE list (only in an undo
        # window) become counted free pages that NR_FREE_PAGES does not count.
        counted = counted_free_pages(s, pfn)
        free_pages, movable_pages = move_freepages_block(s, pfn, start_mt)
        _free_drift(s, counted - free_pages)
        if start_mt == MT.MOVABLE:
            alike = movable_pages
        elif old_mt == MT.MOVABLE:
            alike = (1 << pb_order) - (free_pages + movable_pages)
        else:
            alike = 0
        if free_pages:
            if free_pages + alike >= 1 << (pb_order - 1):
                _claim_pageblock(s, pfn, start_mt)
            return
    move_to_free_list(s, pfn, order, start_mt)


def __rmqueue_fallback(s: System, order: int, start_mt: int) -> bool:
    """``__rmqueue_fallback`` (spec §3.7): steal from the fallback types, largest block first;
    a MOVABLE request that cannot steal a whole block takes the smallest one."""
    steal_order = -1
    for current in range(s.geo.max_order - 1, order - 1, -1):
        fmt = find_suitable_fallback(s, current, start_mt)
        if fmt < 0:
            continue
        can_steal = can_steal_fallback(s, current, start_mt)
        if not can_steal and start_mt == MT.MOVABLE and current > order:
            break
        steal_order = current
        break
    else:
        return False
    if steal_order < 0:
        for current in range(order, s.geo.max_order):
            fmt = find_suitable_fallback(s, current, start_mt)
            if fmt >= 0:
                steal_order = current
                can_steal = can_steal_fallback(s, current, start_mt)
                break
        else:
            return False
    pfn = s.zone.free_list[steal_order][fmt][0]
    steal_suitable_fallback(s, pfn, steal_order, start_mt, can_steal)
    s.note("fallback steal")
    return True


def __rmqueue(s: System, order: int, mt: int) -> int | None:
    """``__rmqueue`` (spec §3.7). ALLOC_CMA is set for MOVABLE requests (``gfp_to_alloc_flags``)."""
    alloc_cma = mt == MT.MOVABLE
    if alloc_cma and s.zone.nr_free_cma_pages > s.zone.nr_free_pages // 2:
        pfn = __rmqueue_smallest(s, order, MT.CMA)
        if pfn is not None:
            s.note("__rmqueue: CMA first (more than half the free pages are CMA)")
            return pfn
    while True:
        pfn = __rmqueue_smallest(s, order, mt)
        if pfn is not None:
            return pfn
        if alloc_cma:
            pfn = __rmqueue_smallest(s, order, MT.CMA)
            if pfn is not None:
                s.note("__rmqueue: CMA when the requested type ran out")
                return pfn
        if not __rmqueue_fallback(s, order, mt):
            return None


def __isolate_free_page(s: System, pfn: int, order: int) -> None:
    """``__isolate_free_page`` (spec §3.9); the model has no watermarks, so it always succeeds."""
    mt = get_pfnblock_migratetype(s, pfn)
    if mt != MT.ISOLATE:
        __mod_zone_freepage_state(s, -(1 << order), mt)
    del_page_from_free_list(s, pfn, order)
    if order >= s.geo.pageblock_order - 1:
        for pb in range(pfn, pfn + (1 << order), s.geo.pageblock_nr_pages):
            if get_pfnblock_migratetype(s, pb) not in (MT.ISOLATE, MT.CMA, MT.HIGHATOMIC):
                set_pageblock_migratetype(s, pb, MT.MOVABLE)


def __putback_isolated_page(s: System, pfn: int, order: int, mt: int) -> None:
    """``__putback_isolated_page`` (spec §3.9): re-free so the block can merge; at the tail
    (FPI_TO_TAIL) from v5.10, head or tail by ``buddy_merge_likely`` in v5.9."""
    __free_one_page(s, pfn, order, mt, to_tail=s.profile.fpi_to_tail)
