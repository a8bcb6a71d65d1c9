"""v6.12 mm/memory_hotplug.c (modern-kernels §6.5, §6.6): offline isolates inside
``zone_pcp_disable`` and drains nothing in its retry loop; the offlined free blocks leave the
ISOLATE lists through the type-checked ``del_page_from_free_list``; online frees its chunks
through ``free_one_page`` (``split_large_buddy``); both end with ``init_per_zone_wmark_min``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.constants import EINTR, MT
from pcpfuzz.mm.buddy import set_pageblock_migratetype
from pcpfuzz.mm.hotplug import mem_hotplug_begin, mem_hotplug_done
from pcpfuzz.mm.isolation import test_pages_isolated
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.mm.migrate import do_migrate_range, scan_movable_pages
from pcpfuzz.mm6.memory_hotplug import memory_notify_going_offline
from pcpfuzz.mm612.buddy import del_page_from_free_list, split_large_buddy
from pcpfuzz.mm612.page_isolation import start_isolate_page_range, undo_isolate_page_range
from pcpfuzz.mm612.pageset import (
    init_per_zone_wmark_min,
    setup_zone_pageset,
    zone_pcp_disable,
    zone_pcp_enable,
    zone_pcp_reset,
)
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def __offline_isolated_pages(s: System, t: Task, start: int, end: int) -> TaskGen:
    """v6.12 ``__offline_isolated_pages``: sections offline, then under ``zone->lock`` every
    free block in range leaves its list with ``del_page_from_free_list(.., MIGRATE_ISOLATE)``
    (type-checked, not counted). A page that is not PageBuddy is the kernel's BUG_ON."""
    s.block_online[start // s.geo.block_pages] = False
    yield None
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    pfn = start
    while pfn < end:
        order = s.buddy_order[pfn]
        if order < 0:
            s.bug("NO-ALLOC-OFFLINED", f"__offline_isolated_pages: pfn {pfn} is {s.where(pfn)}")
            pfn += 1
            continue
        del_page_from_free_list(s, pfn, order, MT.ISOLATE)
        pfn += 1 << order
    s.page_present[start:end] = [False] * (end - start)
    spin_unlock(s, t, s.zone_lock)
    return None


def offline_pages(s: System, t: Task, block: int) -> TaskGen:
    """v6.12 ``offline_pages`` (§6.5): (the caller's ``mem_hotplug_begin``) ``zone_pcp_disable`` and
    ``lru_cache_disable``; isolate; MEM_GOING_OFFLINE (6.1's); migrate and test until every page is
    free, checking ``signal_pending`` each pass; offline the free pages; ``zone_pcp_enable``; adjust
    the managed pages; ``init_per_zone_wmark_min``; ``zone_pcp_reset`` if the zone emptied."""
    start, end = s.geo.block_range(block)
    yield from mem_hotplug_begin(s, t)
    if not s.block_online[block]:
        mem_hotplug_done(s, t)
        return 0
    yield None
    yield from zone_pcp_disable(s, t)
    yield None
    ret = yield from start_isolate_page_range(s, t, start, end, MT.MOVABLE)
    if ret:
        s.note("offline failed: isolation")
        yield None
        yield from zone_pcp_enable(s, t)
        mem_hotplug_done(s, t)
        return ret
    s.isolation_begin(t, start, end, "offline")
    yield from memory_notify_going_offline(s, t)
    while True:
        pfn = start
        while True:
            yield None
            t.loop_iterations += 1
            if t.signal_pending:
                ret = EINTR
                break
            pfn = scan_movable_pages(s, pfn, end)
            if pfn is None:
                break
            yield None
            yield from do_migrate_range(s, t, pfn, end)
        if ret:
            break
        yield None
        t.loop_iterations += 1
        ret = yield from test_pages_isolated(s, t, start, end)
        if not ret:
            break
        s.note("offline retried")
    s.isolation_end(t)
    if ret:
        s.note("offline aborted by a signal")
        yield None
        yield from undo_isolate_page_range(s, t, start, end, MT.MOVABLE)
        yield None
        yield from zone_pcp_enable(s, t)
        mem_hotplug_done(s, t)
        return ret
    yield from __offline_isolated_pages(s, t, start, end)
    yield None
    s.zone.nr_isolate_pageblock -= (end - start) // s.geo.pageblock_nr_pages
    yield None
    yield from zone_pcp_enable(s, t)
    yield None
    s.zone.managed_pages -= end - start
    s.zone.present_pages -= end - start
    yield from init_per_zone_wmark_min(s, t)
    if not s.zone.present_pages:
        zone_pcp_reset(s)
    s.note("offline succeeded")
    mem_hotplug_done(s, t)
    return 0


def online_pages(s: System, t: Task, block: int) -> TaskGen:
    """v6.12 ``online_pages`` (§6.6): the pageblocks start ISOLATE; ``setup_zone_pageset`` if
    the zone was empty; each MAX_ORDER-1 chunk freed by ``__free_pages_core`` (managed pages,
    then ``free_one_page`` with FPI_TO_TAIL: ``split_large_buddy`` onto the ISOLATE lists);
    unisolate; ``init_per_zone_wmark_min``."""
    start, end = s.geo.block_range(block)
    yield from mem_hotplug_begin(s, t)
    if s.block_online[block]:
        mem_hotplug_done(s, t)
        return 0
    for pfn in range(start, end, s.geo.pageblock_nr_pages):
        set_pageblock_migratetype(s, pfn, MT.ISOLATE)
    yield None
    s.zone.nr_isolate_pageblock += (end - start) // s.geo.pageblock_nr_pages
    if not s.zone.present_pages:
        yield from setup_zone_pageset(s, t)
    order = s.geo.max_order - 1
    for pfn in range(start, end, 1 << order):
        yield None
        yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
        s.zone.managed_pages += 1 << order
        s.page_present[pfn : pfn + (1 << order)] = [True] * (1 << order)
        split_large_buddy(s, pfn, order, to_tail=True)
        spin_unlock(s, t, s.zone_lock)
    s.block_online[block] = True
    yield None
    s.zone.present_pages += end - start
    yield from undo_isolate_page_range(s, t, start, end, MT.MOVABLE)
    yield None
    yield from init_per_zone_wmark_min(s, t)
    s.note("online succeeded")
    mem_hotplug_done(s, t)
    return 0
