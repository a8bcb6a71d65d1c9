"""v6.12 buddy core of mm/page_alloc.c (modern-kernels §2.5, §3.5): free counts are kept per
freelist (``account_freepages``), every freelist operation checks the caller's type against
the head pageblock's (TYPE-WARN), a merge retypes the buddy's pageblock, and direct frees split
large buddies per pageblock. Every function here runs under ``zone->lock`` and never yields.

The model never creates HIGHATOMIC pageblocks (no ``reserve_highatomic_pageblock``), so
``zone->nr_free_highatomic`` is not kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.constants import FALLBACKS, MT, mt_name
from pcpfuzz.dirty import FREECOUNT
from pcpfuzz.mm import buddy as mm
from pcpfuzz.mm.buddy import (
    buddy_merge_likely,
    can_steal_fallback,
    get_pfnblock_migratetype,
    page_is_buddy,
    set_pageblock_migratetype,
)
from pcpfuzz.mm6.buddy import migratetype_is_mergeable

if TYPE_CHECKING:
    from pcpfuzz.system import System


def check_type(s: System, fn: str, pfn: int, order: int, mt: int) -> None:
    """The ``VM_WARN_ONCE`` of ``__add_to_free_list``, ``__del_page_from_free_list`` and
    ``move_to_free_list`` (§8.3 TYPE-WARN): the passed type is the head pageblock's. Each call
    site warns once."""
    pb = get_pfnblock_migratetype(s, pfn)
    if pb == mt or any(v.invariant == "TYPE-WARN" and v.message.startswith(fn) for v in s.bugs):
        return
    s.bug(
        "TYPE-WARN",
        f"{fn}: page type is {pb}, passed migratetype is {mt} (nr={1 << order}): order-{order} "
        f"block at pfn {pfn}, pageblock {s.pb(pfn)} is {mt_name(pb)}, caller says {mt_name(mt)}",
    )


def account_freepages(s: System, nr_pages: int, mt: int) -> None:
    """``account_freepages``: NR_FREE_PAGES, and NR_FREE_CMA_PAGES for CMA; nothing for
    ISOLATE."""
    if mt == MT.ISOLATE:
        return
    s.dirty |= FREECOUNT
    s.zone.nr_free_pages += nr_pages
    if mt == MT.CMA:
        s.zone.nr_free_cma_pages += nr_pages


def __add_to_free_list(s: System, pfn: int, order: int, mt: int, tail: bool = False) -> None:
    """``__add_to_free_list``: type check, then head or tail of ``free_list[order][mt]``."""
    check_type(s, "__add_to_free_list", pfn, order, mt)
    mm.add_to_free_list(s, pfn, order, mt, tail)


def __del_page_from_free_list(s: System, pfn: int, order: int, mt: int) -> None:
    """``__del_page_from_free_list``: type check, unlink from whatever list the block is on."""
    check_type(s, "__del_page_from_free_list", pfn, order, mt)
    mm.del_page_from_free_list(s, pfn, order)


def del_page_from_free_list(s: System, pfn: int, order: int, mt: int) -> None:
    """``del_page_from_free_list``: unlink, then account the block out under ``mt``."""
    __del_page_from_free_list(s, pfn, order, mt)
    account_freepages(s, -(1 << order), mt)


def move_to_free_list(s: System, pfn: int, order: int, old_mt: int, new_mt: int) -> None:
    """``move_to_free_list``: type check against ``old_mt``, ``list_move_tail`` to ``new_mt``,
    accounted from ``old_mt`` to ``new_mt``."""
    check_type(s, "move_to_free_list", pfn, order, old_mt)
    mm.move_to_free_list(s, pfn, order, new_mt)
    account_freepages(s, -(1 << order), old_mt)
    account_freepages(s, 1 << order, new_mt)


def __free_one_page(s: System, pfn: int, order: int, mt: int, to_tail: bool = False) -> None:
    """v6.12 ``__free_one_page`` (§2.5): account under ``mt``, merge up (across pageblocks only
    when both types are mergeable), retyping a buddy's pageblock of another type to ``mt``."""
    account_freepages(s, 1 << order, mt)
    buddy = pfn
    while order < s.geo.max_order - 1:
        buddy = pfn ^ (1 << order)
        if not page_is_buddy(s, buddy, order):
            break
        bmt = mt
        if order >= s.geo.pageblock_order:
            bmt = get_pfnblock_migratetype(s, buddy)
            if mt != bmt and not (migratetype_is_mergeable(mt) and migratetype_is_mergeable(bmt)):
                break
        __del_page_from_free_list(s, buddy, order, bmt)
        if bmt != mt:
            set_pageblock_migratetype(s, buddy, mt)
            s.note("merge retyped the buddy's pageblock")
        pfn &= buddy
        order += 1
    if not to_tail:
        to_tail = buddy_merge_likely(s, pfn, buddy, order)
    __add_to_free_list(s, pfn, order, mt, to_tail)


def split_large_buddy(s: System, pfn: int, order: int, to_tail: bool = False) -> None:
    """``split_large_buddy`` (§2.5): free a block already off the lists in pieces of at most
    ``pageblock_order``, each with its pageblock's type read now."""
    end = pfn + (1 << order)
    order = min(order, s.geo.pageblock_order)
    while pfn != end:
        __free_one_page(s, pfn, order, get_pfnblock_migratetype(s, pfn), to_tail)
        pfn += 1 << order


def expand(s: System, pfn: int, low: int, high: int, mt: int) -> int:
    """``expand``: upper halves to the head of ``mt``'s lists; returns the pages added."""
    added = 0
    while high > low:
        high -= 1
        __add_to_free_list(s, pfn + (1 << high), high, mt)
        added += 1 << high
    return added


def page_del_and_expand(s: System, pfn: int, low: int, high: int, mt: int) -> None:
    """``page_del_and_expand``: unlink, split down to ``low``, account out what is taken."""
    __del_page_from_free_list(s, pfn, high, mt)
    account_freepages(s, -((1 << high) - expand(s, pfn, low, high, mt)), mt)


def __rmqueue_smallest(s: System, order: int, mt: int) -> int | None:
    """``__rmqueue_smallest``: the head of the smallest non-empty ``mt`` list."""
    for current in range(order, s.geo.max_order):
        fl = s.zone.free_list[current][mt]
        if fl:
            pfn = fl[0]
            page_del_and_expand(s, pfn, order, current, mt)
            return pfn
    return None


def prep_move_freepages_block(s: System, pfn: int) -> tuple[int, int, int]:
    """``prep_move_freepages_block`` with counters: (start pfn, free pages, movable pages) of
    ``pfn``'s pageblock (the model's zone spans every pageblock)."""
    nr = s.geo.pageblock_nr_pages
    start = pfn & ~(nr - 1)
    free = movable = 0
    p = start
    while p < start + nr:
        order = s.buddy_order[p]
        if order >= 0:
            free += 1 << order
            p += 1 << order
            continue
        head = s.alloc_head[p]
        if head >= 0 and s.allocated[head].movable:
            movable += 1
        p += 1
    return start, free, movable


def move_free_heads(s: System, start: int, old_mt: int, new_mt: int) -> int:
    """The loop of ``__move_freepages_block``: every free head in the pageblock at ``start``
    moved (accounted) from ``old_mt`` to ``new_mt``; returns the pages moved."""
    p = start
    moved = 0
    while p < start + s.geo.pageblock_nr_pages:
        order = s.buddy_order[p]
        if order < 0:
            p += 1
            continue
        move_to_free_list(s, p, order, old_mt, new_mt)
        p += 1 << order
        moved += 1 << order
    return moved


def __move_freepages_block(s: System, start: int, old_mt: int, new_mt: int) -> int:
    """``__move_freepages_block``: move the block's free heads, then set the pageblock's type
    (after the moves: "Free page moving can fail, so it happens before the type update")."""
    moved = move_free_heads(s, start, old_mt, new_mt)
    set_pageblock_migratetype(s, start, new_mt)
    return moved


def find_large_buddy(s: System, start: int) -> int:
    """``find_large_buddy``: the head of a free buddy that covers ``start``, else ``start``."""
    pfn = start
    order = 0
    while s.buddy_order[pfn] < 0:
        order += 1
        if order > s.geo.max_order - 1:
            return start
        pfn &= ~0 << order
    return pfn if pfn + (1 << s.buddy_order[pfn]) > start else start


def large_buddy_head(s: System, start: int) -> int | None:
    """The free buddy ``move_freepages_block_isolate`` splits for the pageblock at ``start``:
    one it is a tail of, or one it heads of more than ``pageblock_order``; None if neither (or
    when ``pageblock_order`` is the largest order)."""
    if s.geo.pageblock_order == s.geo.max_order - 1:
        return None
    head = find_large_buddy(s, start)
    if head != start:
        return head
    return start if s.buddy_order[start] > s.geo.pageblock_order else None


def split_pageblock_out(s: System, head: int, start: int, mt: int) -> None:
    """``move_freepages_block_isolate``'s large-buddy case: take the buddy at ``head`` off
    (accounted under its head's type), set the pageblock at ``start`` to ``mt``, re-free the
    buddy per pageblock (``split_large_buddy``)."""
    order = s.buddy_order[head]
    del_page_from_free_list(s, head, order, get_pfnblock_migratetype(s, head))
    set_pageblock_migratetype(s, start, mt)
    split_large_buddy(s, head, order)
    s.note("isolation split a large free buddy")


def move_freepages_block_isolate(s: System, pfn: int, mt: int) -> bool:
    """``move_freepages_block_isolate`` (§6.2): a pageblock inside a larger free buddy (as its
    tail or its head) is split out of it; otherwise its free blocks move, then its type is
    set. The model's zone spans every pageblock, so it never returns false."""
    start = pfn & ~(s.geo.pageblock_nr_pages - 1)
    head = large_buddy_head(s, start)
    if head is not None:
        split_pageblock_out(s, head, start, mt)
    else:
        __move_freepages_block(s, start, get_pfnblock_migratetype(s, start), mt)
    return True


def steal_suitable_fallback(
    s: System, pfn: int, current: int, order: int, start_mt: int, whole: bool
) -> int | None:
    """v6.12 ``steal_suitable_fallback`` (§3.5): take a block of pageblock order or more whole
    (retyping its pageblocks), claim the pageblock when enough of it is free or alike (then
    allocate from the claimed lists), else take just the requested chunk. Returns the pfn."""
    block_type = get_pfnblock_migratetype(s, pfn)
    if block_type != MT.HIGHATOMIC:
        if current >= s.geo.pageblock_order:
            del_page_from_free_list(s, pfn, current, block_type)
            for pb in range(pfn, pfn + (1 << current), s.geo.pageblock_nr_pages):
                set_pageblock_migratetype(s, pb, start_mt)
            account_freepages(s, expand(s, pfn, order, current, start_mt), start_mt)
            return pfn
        if whole:
            start, free, movable = prep_move_freepages_block(s, pfn)
            if start_mt == MT.MOVABLE:
                alike = movable
            elif block_type == MT.MOVABLE:
                alike = s.geo.pageblock_nr_pages - (free + movable)
            else:
                alike = 0
            if free + alike >= 1 << (s.geo.pageblock_order - 1):
                __move_freepages_block(s, start, block_type, start_mt)
                s.note("fallback claimed a pageblock")
                return __rmqueue_smallest(s, order, start_mt)
    page_del_and_expand(s, pfn, order, current, block_type)
    return pfn


def find_suitable_fallback(s: System, order: int, start_mt: int) -> int:
    """``find_suitable_fallback`` (not only stealable): the first fallback type with a free
    block of ``order``."""
    for fmt in FALLBACKS[start_mt]:
        if s.zone.free_list[order][fmt]:
            return fmt
    return -1


def _find_smallest(s: System, order: int, start_mt: int) -> tuple[int, int]:
    """``__rmqueue_fallback``'s ``find_smallest``: the smallest order with a fallback block."""
    for current in range(order, s.geo.max_order):
        fmt = find_suitable_fallback(s, current, start_mt)
        if fmt >= 0:
            return current, fmt
    raise AssertionError("find_smallest: the largest-first search found a fallback block")


def __rmqueue_fallback(s: System, order: int, start_mt: int) -> int | None:
    """v6.12 ``__rmqueue_fallback``: the largest fallback block, or the smallest for a MOVABLE
    request that cannot steal the whole block; ``steal_suitable_fallback`` returns the page."""
    for current in range(s.geo.max_order - 1, order - 1, -1):
        fmt = find_suitable_fallback(s, current, start_mt)
        if fmt < 0:
            continue
        can_steal = can_steal_fallback(s, current, start_mt)
        if not can_steal and start_mt == MT.MOVABLE and current > order:
            current, fmt = _find_smallest(s, order, start_mt)
            can_steal = can_steal_fallback(s, current, start_mt)
        s.note("fallback steal")
        pfn = s.zone.free_list[current][fmt][0]
        return steal_suitable_fallback(s, pfn, current, order, start_mt, can_steal)
    return None


def __rmqueue(s: System, order: int, mt: int) -> int | None:
    """v6.12 ``__rmqueue`` (§3.5): CMA balancing for MOVABLE (ALLOC_CMA), the requested type,
    CMA, then the fallback, which returns the page (no retry)."""
    alloc_cma = mt == MT.MOVABLE
    if alloc_cma and s.zone.nr_free_cma_pages > s.zone.nr_free_pages // 2:
        pfn = __rmqueue_smallest(s, order, MT.CMA)
        if pfn is not None:
            return pfn
    pfn = __rmqueue_smallest(s, order, mt)
    if pfn is None and alloc_cma:
        pfn = __rmqueue_smallest(s, order, MT.CMA)
    if pfn is None:
        pfn = __rmqueue_fallback(s, order, mt)
    return pfn


def __isolate_free_page(s: System, pfn: int, order: int) -> None:
    """v6.12 ``__isolate_free_page`` (§3.5; the model has no watermarks): unlink accounted
    under the block's type; a block of ``pageblock_order - 1`` or more moves the mergeable
    pageblocks it covers to MOVABLE with ``move_freepages_block``."""
    mt = get_pfnblock_migratetype(s, pfn)
    del_page_from_free_list(s, pfn, order, mt)
    if order >= s.geo.pageblock_order - 1:
        for pb in range(pfn, pfn + (1 << order), s.geo.pageblock_nr_pages):
            pb_mt = get_pfnblock_migratetype(s, pb)
            if migratetype_is_mergeable(pb_mt):
                __move_freepages_block(s, pb & ~(s.geo.pageblock_nr_pages - 1), pb_mt, MT.MOVABLE)
