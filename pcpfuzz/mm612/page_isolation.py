"""v6.12 mm/page_isolation.c (modern-kernels §6.2, §6.3): ``set_migratetype_isolate`` moves
the pageblock's free blocks (accounted) before it sets the type, or splits a large buddy out
(``move_freepages_block_isolate``); unisolation re-frees a free block of pageblock order whose
buddy is not isolated, so that it merges."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.constants import EBUSY, MT, mt_name
from pcpfuzz.mm.buddy import get_pfnblock_migratetype, page_is_buddy, set_pageblock_migratetype
from pcpfuzz.mm.isolation import has_unmovable_pages
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.mm6.page_isolation import run_undo_isolate_page_range
from pcpfuzz.mm612.buddy import (
    __free_one_page,
    __isolate_free_page,
    large_buddy_head,
    move_free_heads,
    move_freepages_block_isolate,
    split_pageblock_out,
)
from pcpfuzz.state import IRQ_OFF, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def set_migratetype_isolate(s: System, t: Task, pfn: int, mt: int) -> TaskGen:
    """v6.12 ``set_migratetype_isolate`` (§6.2, §7.2 item 7): under ``zone->lock``, EBUSY if
    already ISOLATE or unmovable; else ``move_freepages_block_isolate(.., ISOLATE)``: a large
    buddy split out in one step, or the free heads moved (one step) and then the type set (the
    next); ``nr_isolate_pageblock++``. No drain."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    old = get_pfnblock_migratetype(s, pfn)
    if old == MT.ISOLATE or has_unmovable_pages(s, pfn, mt) is not None:
        spin_unlock(s, t, s.zone_lock)
        s.note("isolation failed")
        return EBUSY
    head = large_buddy_head(s, pfn)
    if head is not None:
        split_pageblock_out(s, head, pfn, MT.ISOLATE)
    else:
        move_free_heads(s, pfn, old, MT.ISOLATE)
        yield IRQ_OFF
        set_pageblock_migratetype(s, pfn, MT.ISOLATE)
    s.zone.nr_isolate_pageblock += 1
    spin_unlock(s, t, s.zone_lock)
    if s.tracing:
        s.klog(t.cpu, f"set_migratetype_isolate(pb {s.pb(pfn)}): {mt_name(old)} -> ISOLATE")
    return 0


def unset_migratetype_isolate(s: System, t: Task, pfn: int, mt: int) -> TaskGen:
    """v6.12 ``unset_migratetype_isolate`` (§6.2), one ``zone->lock`` step: a free block of
    order in [pageblock_order, MAX_PAGE_ORDER) whose buddy is free and not ISOLATE is isolated,
    retyped and put back (``__putback_isolated_page``: to the tail, merging); otherwise
    ``move_freepages_block_isolate(.., mt)``."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    if get_pfnblock_migratetype(s, pfn) != MT.ISOLATE:
        spin_unlock(s, t, s.zone_lock)
        return None
    order = s.buddy_order[pfn]
    isolated_page = False
    if s.geo.pageblock_order <= order < s.geo.max_order - 1:
        buddy = pfn ^ (1 << order)
        if page_is_buddy(s, buddy, order) and get_pfnblock_migratetype(s, buddy) != MT.ISOLATE:
            __isolate_free_page(s, pfn, order)
            isolated_page = True
    if isolated_page:
        set_pageblock_migratetype(s, pfn, mt)
        __free_one_page(s, pfn, order, mt, to_tail=True)
        s.note("unisolation re-freed a block to merge it")
    else:
        move_freepages_block_isolate(s, pfn, mt)
    s.zone.nr_isolate_pageblock -= 1
    spin_unlock(s, t, s.zone_lock)
    return None


def start_isolate_page_range(s: System, t: Task, start: int, end: int, mt: int) -> TaskGen:
    """v6.12 ``start_isolate_page_range`` (§6.3) for a MAX_ORDER-aligned range (no page
    straddles its boundaries, so ``isolate_single_pageblock``'s scan finds nothing): the first
    pageblock, the last, then each middle one; on failure undo what was isolated. The pass is
    ghost state for the loose FL-TYPE (strict FL-TYPE is checked at every ``zone->lock``
    release instead)."""
    step = s.geo.pageblock_nr_pages
    blocks = [pfn for pfn in range(start, end, step) if s.pfn_online(pfn)]
    order = blocks[:1] + blocks[-1:] if len(blocks) > 1 else blocks
    order += blocks[1:-1]
    s.isolation_passes += 1
    done: list[int] = []
    ret: int | None = 0
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
    """v6.12 ``undo_isolate_page_range`` (§6.3): 6.1's (``run_undo_isolate_page_range``: unset
    each online ISOLATE pageblock, one step each) with the v6.12 ``unset_migratetype_isolate``."""
    yield from run_undo_isolate_page_range(s, t, start, end, mt, unset_migratetype_isolate)
    return None
