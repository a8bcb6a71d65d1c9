"""v6.1 mm/page_isolation.c (modern-kernels §6.2-§6.4): ``set_migratetype_isolate`` holds
``zone->lock`` across two steps (type first, then the moves); ``start_isolate_page_range``
isolates the boundary pageblocks first (``isolate_single_pageblock``, with ``split_free_page``
for free blocks across a boundary), then the middle."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pcpfuzz.constants import EBUSY, ENOENT, MT, mt_name
from pcpfuzz.mm.buddy import (
    __mod_zone_freepage_state,
    del_page_from_free_list,
    get_pfnblock_migratetype,
    move_freepages_block,
    page_is_buddy,
    set_pageblock_migratetype,
)
from pcpfuzz.mm.isolation import (
    _free_drift,
    counted_free_pages,
    has_unmovable_pages,
    unset_isolate_locked,
)
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.mm.migrate import do_migrate_range
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


def __putback_isolated_page(s: System, pfn: int, order: int, mt: int) -> None:
    """``__putback_isolated_page``: the v6.1 ``__free_one_page`` with FPI_TO_TAIL."""
    __free_one_page(s, pfn, order, mt, to_tail=True)


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
    merge = s.geo.pageblock_order <= order < s.geo.max_order - 1
    if merge:
        buddy = pfn ^ (1 << order)
        merge = page_is_buddy(s, buddy, order) and get_pfnblock_migratetype(s, buddy) != MT.ISOLATE
    unset_isolate_locked(s, pfn, order, mt, merge, __putback_isolated_page)
    spin_unlock(s, t, s.zone_lock)
    return None


def split_free_page(s: System, t: Task, pfn: int, order: int, split_pfn_offset: int) -> TaskGen:
    """v6.1 ``split_free_page`` (§6.2), one ``zone->lock`` step: ENOENT if ``pfn`` no longer
    heads a free block of ``order``; else take the block out (uncounted by its head
    pageblock's type) and re-free it in pieces, each with its own pageblock's type, the first
    part ending at ``split_pfn_offset``."""
    if split_pfn_offset == 0:
        return 0
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    if s.buddy_order[pfn] != order:
        spin_unlock(s, t, s.zone_lock)
        s.note("split_free_page: the free page changed")
        return ENOENT
    mt = get_pfnblock_migratetype(s, pfn)
    if mt != MT.ISOLATE:
        __mod_zone_freepage_state(s, -(1 << order), mt)
    del_page_from_free_list(s, pfn, order)
    p = pfn
    while p < pfn + (1 << order):
        piece = min((p & -p).bit_length() - 1 if p else order, split_pfn_offset.bit_length() - 1)
        __free_one_page(s, p, piece, get_pfnblock_migratetype(s, p))
        p += 1 << piece
        split_pfn_offset -= 1 << piece
        if split_pfn_offset == 0:
            split_pfn_offset = (1 << order) - (p - pfn)
    spin_unlock(s, t, s.zone_lock)
    s.note("split_free_page split a block across an isolation boundary")
    if s.tracing:
        s.klog(t.cpu, f"split_free_page(pfn {pfn}, order {order}): split at the boundary")
    return 0


def _free_head(s: System, pfn: int) -> int | None:
    """The head of the free buddy block holding ``pfn`` (the loop after the migration in
    ``isolate_single_pageblock``), or None."""
    order, head = 0, pfn
    while s.buddy_order[head] < 0:
        order += 1
        if order >= s.geo.max_order:
            return None
        head &= ~((1 << order) - 1)
    return head


def _migrate_straddling(s: System, t: Task, pfn: int, head: int) -> TaskGen:
    """The migration branch of ``isolate_single_pageblock``: an LRU block straddling the
    boundary is migrated under a temporary isolation of ``pfn``'s pageblock with its own type
    (``set_migratetype_isolate(page, page_mt)``, undone after ``__alloc_contig_migrate_range``);
    returns the head of the free block left, or None (-EBUSY)."""
    block = pfn & ~(s.geo.pageblock_nr_pages - 1)
    page_mt = get_pfnblock_migratetype(s, block)
    isolate_page = page_mt != MT.ISOLATE
    if isolate_page:
        yield None
        if (yield from set_migratetype_isolate(s, t, block, page_mt)):
            return None
    yield from do_migrate_range(s, t, head, head + (1 << s.allocated[head].order))
    busy = s.alloc_head[head] == head  # __alloc_contig_migrate_range's -EBUSY
    if isolate_page:
        yield None
        yield from unset_migratetype_isolate(s, t, block, page_mt)
    if busy:
        return None
    yield None
    return _free_head(s, pfn)


def isolate_single_pageblock(
    s: System, t: Task, boundary: int, isolate_before: bool, skip: bool, mt: int
) -> TaskGen:
    """v6.1 ``isolate_single_pageblock`` (§6.3, §7.2 item 8): isolate the pageblock after (or
    before) ``boundary`` (only assert it when ``skip``); if the page across the boundary is
    online, scan from the MAX_ORDER-aligned start below the block up to ``boundary``: a free
    block across it is split (``split_free_page``; ENOENT rescans), an LRU block across it is
    migrated and its free block then split, any other block across it fails (EBUSY, the
    pageblock unset). The lockless scan is one step; each split and migration are their own."""
    nr = s.geo.pageblock_nr_pages
    block = boundary - nr if isolate_before else boundary
    if not skip:  # with skip, a VM_BUG_ON that the block is ISOLATE (debug builds only)
        ret = yield from set_migratetype_isolate(s, t, block, mt)
        if ret:
            return ret
    across = boundary if isolate_before else boundary - 1
    if not (0 <= across < s.nr_pages and s.pfn_online(across)):
        return 0
    yield None
    pfn = block & ~(s.geo.max_order_nr_pages - 1)
    while pfn < boundary:
        order = s.buddy_order[pfn]
        if order >= 0:
            if pfn + (1 << order) > boundary:
                yield None
                if (yield from split_free_page(s, t, pfn, order, boundary - pfn)):
                    continue
            pfn += 1 << order
            continue
        head = s.alloc_head[pfn]
        if head >= 0 and s.allocated[head].order:  # a compound page
            end = head + (1 << s.allocated[head].order)
            if end <= boundary:
                pfn = end
                continue
            blk = s.allocated[head]
            outer = None
            if blk.movable and blk.holder is None:  # PageLRU
                outer = yield from _migrate_straddling(s, t, pfn, head)
            if outer is None:
                s.note("isolate_single_pageblock: a block across the boundary stays")
                if not skip:
                    yield None
                    yield from unset_migratetype_isolate(s, t, block, mt)
                return EBUSY
            pfn = outer
            continue
        pfn += 1
    return 0


def start_isolate_page_range(s: System, t: Task, start: int, end: int, mt: int) -> TaskGen:
    """v6.1 ``start_isolate_page_range`` (§6.3): the first pageblock and the last one
    (``isolate_single_pageblock``, which splits or migrates what straddles the range's
    boundaries; the last is only checked when the range is one pageblock), then each middle
    pageblock with an online page; on failure undo what was isolated."""
    nr = s.geo.pageblock_nr_pages
    isolate_start = start & ~(nr - 1)
    isolate_end = -(-end // nr) * nr
    s.isolation_passes += 1
    ret = yield from isolate_single_pageblock(s, t, isolate_start, False, False, mt)
    if not ret:
        yield None
        skip = isolate_start == isolate_end - nr
        ret = yield from isolate_single_pageblock(s, t, isolate_end, True, skip, mt)
        if ret:
            yield None
            yield from unset_migratetype_isolate(s, t, isolate_start, mt)
    if not ret:
        for pfn in range(isolate_start + nr, isolate_end - nr, nr):
            if not s.pfn_online(pfn):
                continue
            yield None
            if (yield from set_migratetype_isolate(s, t, pfn, mt)):
                yield from undo_isolate_page_range(s, t, isolate_start, pfn, mt)
                yield None
                yield from unset_migratetype_isolate(s, t, isolate_end - nr, mt)
                ret = EBUSY
                break
    s.isolation_passes -= 1
    return ret


def run_undo_isolate_page_range(
    s: System,
    t: Task,
    start: int,
    end: int,
    mt: int,
    unset_migratetype_isolate: Callable[[System, Task, int, int], TaskGen],
) -> TaskGen:
    """6.1/6.12 ``undo_isolate_page_range`` (§6.3) with a kernel's
    ``unset_migratetype_isolate``: unset each online ISOLATE pageblock, one step each."""
    s.isolation_passes += 1
    for pfn in range(start, end, s.geo.pageblock_nr_pages):
        if pfn != start:
            yield None
        if s.pfn_online(pfn) and get_pfnblock_migratetype(s, pfn) == MT.ISOLATE:
            yield from unset_migratetype_isolate(s, t, pfn, mt)
    s.isolation_passes -= 1
    return None


def undo_isolate_page_range(s: System, t: Task, start: int, end: int, mt: int) -> TaskGen:
    """v6.1 ``undo_isolate_page_range`` (§6.3): ``run_undo_isolate_page_range`` with the v6.1
    ``unset_migratetype_isolate``."""
    yield from run_undo_isolate_page_range(s, t, start, end, mt, unset_migratetype_isolate)
    return None
