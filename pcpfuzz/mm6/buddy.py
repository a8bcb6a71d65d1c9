"""v6.1 buddy insertion and the direct frees of mm/page_alloc.c (modern-kernels §2.5): the
cross-pageblock merge check is unconditional, and every direct free takes ``zone->lock``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT
from pcpfuzz.dirty import landed
from pcpfuzz.mm.buddy import (
    __mod_zone_freepage_state,
    add_to_free_list,
    buddy_merge_likely,
    del_page_from_free_list,
    get_pfnblock_migratetype,
    page_is_buddy,
)
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def migratetype_is_mergeable(mt: int) -> bool:
    """``migratetype_is_mergeable``: UNMOVABLE, MOVABLE, RECLAIMABLE."""
    return mt < MIGRATE_PCPTYPES


def __free_one_page(s: System, pfn: int, order: int, mt: int, to_tail: bool = False) -> None:
    """v6.1 ``__free_one_page`` (§2.5): count the block under the caller's type, then merge up;
    from ``pageblock_order`` a merge across pageblocks of different types is refused when
    either is CMA, HIGHATOMIC or ISOLATE."""
    if mt != MT.ISOLATE:
        __mod_zone_freepage_state(s, 1 << order, mt)
    while order < s.geo.max_order - 1:
        buddy = pfn ^ (1 << order)
        if not page_is_buddy(s, buddy, order):
            break
        if order >= s.geo.pageblock_order:
            bmt = get_pfnblock_migratetype(s, buddy)
            if mt != bmt and not (migratetype_is_mergeable(mt) and migratetype_is_mergeable(bmt)):
                break
        del_page_from_free_list(s, buddy, order)
        pfn &= buddy
        order += 1
    if not to_tail:
        to_tail = buddy_merge_likely(s, pfn, pfn ^ (1 << order), order)
    add_to_free_list(s, pfn, order, mt, tail=to_tail)


def free_one_page(s: System, t: Task, pfn: int, order: int, mt: int) -> TaskGen:
    """``free_one_page`` (§2.5): under ``zone->lock``, re-read the type when the zone has
    isolated pageblocks or the caller passed ISOLATE, then ``__free_one_page``."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    if s.zone.nr_isolate_pageblock or mt == MT.ISOLATE:
        mt = get_pfnblock_migratetype(s, pfn)
    landed(s, pfn)
    __free_one_page(s, pfn, order, mt)
    spin_unlock(s, t, s.zone_lock)
    return None


def __free_pages_ok(s: System, t: Task, pfn: int, order: int) -> TaskGen:
    """``__free_pages_ok`` (§2.5): a lockless type read, a preemption point, then the locked
    part of ``free_one_page``."""
    mt = get_pfnblock_migratetype(s, pfn)
    yield None
    yield from free_one_page(s, t, pfn, order, mt)
    if s.tracing:
        s.klog(t.cpu, f"__free_pages_ok(pfn {pfn}, order {order}): to the buddy")
    return None
