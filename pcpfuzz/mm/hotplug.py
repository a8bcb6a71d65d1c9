"""Memory offline and online, mm/memory_hotplug.c (spec §10), per profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pcpfuzz.constants import EINTR, MT
from pcpfuzz.dirty import ONLINE, PRESENT
from pcpfuzz.mm.buddy import del_page_from_free_list, free_one_page, set_pageblock_migratetype
from pcpfuzz.mm.drain import drain_all_pages
from pcpfuzz.mm.isolation import (
    start_isolate_page_range,
    test_pages_isolated,
    undo_isolate_page_range,
)
from pcpfuzz.mm.locking import mutex_lock, mutex_unlock
from pcpfuzz.mm.migrate import do_migrate_range, scan_movable_pages
from pcpfuzz.mm.pageset import (
    setup_zone_pageset,
    zone_pcp_disable,
    zone_pcp_enable,
    zone_pcp_reset,
    zone_pcp_update,
)
from pcpfuzz.mm.rcu import rcu_sync_enter, rcu_sync_exit
from pcpfuzz.mm.slub import slab_mem_going_offline_callback
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def mem_hotplug_begin(s: System, t: Task) -> TaskGen:
    """``lock_device_hotplug_sysfs`` + ``mem_hotplug_begin`` (which also holds
    ``cpus_read_lock``, so no CPU hotplug runs until ``mem_hotplug_done``). Its
    ``percpu_down_write`` first calls ``rcu_sync_enter``, which from GP_IDLE waits in
    ``synchronize_rcu`` for every CPU that is IRQ-off (docs/fidelity.md, issue 11)."""
    yield from mutex_lock(s, t, s.device_hotplug_lock)
    yield from rcu_sync_enter(s, t, s.mem_hotplug_rss)
    yield from mutex_lock(s, t, s.mem_hotplug_lock)
    return None


def mem_hotplug_done(s: System, t: Task) -> None:
    """``mem_hotplug_done`` (``percpu_up_write``: ``rcu_sync_exit``) + ``unlock_device_hotplug``."""
    mutex_unlock(s, t, s.mem_hotplug_lock)
    rcu_sync_exit(s, t, s.mem_hotplug_rss)
    mutex_unlock(s, t, s.device_hotplug_lock)


def memory_notify_going_offline(s: System, t: Task) -> TaskGen:
    """``memory_notify(MEM_GOING_OFFLINE, &arg)`` (5.10 MH 1572, 5.11 MH 1521): of its
    notifiers only SLUB's ``slab_memory_callback`` matters here; it waits for every CPU in
    ``flush_all``. It runs in the step that ends the isolation (or patch 6's drain): the
    ``node_states_check_changes_offline`` between them touches nothing the model has."""
    yield from slab_mem_going_offline_callback(s, t)
    return None


def remove_free_blocks(
    s: System, start: int, end: int, del_page: Callable[[System, int, int], None]
) -> None:
    """``__offline_isolated_pages``' removal (5.x, 6.1, 6.12), under ``zone->lock``: every free
    block in range leaves its freelist through the version's ``del_page_from_free_list``
    (``del_page``), then the pages are not present. A page that is not PageBuddy is the
    kernel's BUG_ON (NO-ALLOC-OFFLINED)."""
    pfn = start
    while pfn < end:
        order = s.buddy_order[pfn]
        if order < 0:
            s.bug("NO-ALLOC-OFFLINED", f"__offline_isolated_pages: pfn {pfn} is {s.where(pfn)}")
            pfn += 1
            continue
        del_page(s, pfn, order)
        pfn += 1 << order
    s.page_present[start:end] = [False] * (end - start)
    s.dirty |= PRESENT


def __offline_isolated_pages(s: System, t: Task, start: int, end: int) -> TaskGen:
    """``__offline_isolated_pages``: sections go offline, then under zone->lock every free
    block in range leaves its freelist with no counter change. A page that is not PageBuddy
    here is the kernel's BUG_ON (NO-ALLOC-OFFLINED)."""
    s.block_online[start // s.geo.block_pages] = False
    s.dirty |= ONLINE
    yield None
    remove_free_blocks(s, start, end, del_page_from_free_list)
    if s.tracing:
        s.klog(t.cpu, f"__offline_isolated_pages(pfn {start}-{end - 1}): offline")
    return None


def migrate_movable_pages(s: System, t: Task, start: int, end: int) -> TaskGen:
    """The inner ``do { ... } while (!ret)`` of ``offline_pages`` (spec §10.1; 6.1/6.12 alike,
    modern-kernels §6.5): each pass one step, ``signal_pending`` then ``scan_movable_pages``,
    and ``do_migrate_range`` the next, until no movable page is left. Returns 0 or EINTR."""
    pfn = start
    while True:
        yield None
        t.loop_iterations += 1
        if t.signal_pending:
            return EINTR
        found = scan_movable_pages(s, pfn, end)
        if found is None:
            return 0
        pfn = found
        yield None
        yield from do_migrate_range(s, t, pfn, end)


def offline_retry_loop(s: System, t: Task, start: int, end: int, retry_drain: bool) -> TaskGen:
    """``offline_pages``' outer ``do { ... } while (test_pages_isolated(...))`` (spec §10.1;
    6.1/6.12 alike, modern-kernels §6.5): each pass migrates afresh (a failed test only
    retries), then tests in a step of its own; v5.10 drains all pages after a failed test
    (``retry_drain``). Returns 0 or EINTR."""
    while True:
        ret = yield from migrate_movable_pages(s, t, start, end)
        if ret:
            return ret
        yield None
        t.loop_iterations += 1
        if not (yield from test_pages_isolated(s, t, start, end)):
            return 0
        s.note("offline retried")
        if retry_drain:
            yield None
            yield from drain_all_pages(s, t)


def offline_pages(s: System, t: Task, block: int) -> TaskGen:
    """``offline_pages`` of memory block ``block`` (spec §10.1-§10.3): isolate (v5.11: inside
    ``zone_pcp_disable``), then migrate and test until every page is free, draining on a
    failed test in v5.10, and check ``signal_pending`` each pass. Patch 6's drain after
    isolation is dropped again by patch 7 (v5.11 offline drains nothing)."""
    p = s.profile
    start, end = s.geo.block_range(block)
    nr_pages = end - start
    yield from mem_hotplug_begin(s, t)
    if not s.block_online[block]:
        mem_hotplug_done(s, t)
        return 0
    yield None
    if p.pcp_disable_in_offline:
        yield from zone_pcp_disable(s, t)
        yield None
    ret = yield from start_isolate_page_range(s, t, start, end, MT.MOVABLE)
    if ret:
        s.note("offline failed: isolation")
        if p.pcp_disable_in_offline and p.enable_on_fail:
            yield None
            yield from zone_pcp_enable(s, t)
        mem_hotplug_done(s, t)
        return ret
    s.isolation_begin(t, start, end, "offline")
    if p.isolate_user_drain and not p.pcp_disable_in_offline:
        yield None
        yield from drain_all_pages(s, t)
    yield from memory_notify_going_offline(s, t)
    ret = yield from offline_retry_loop(s, t, start, end, p.offline_retry_drain)
    if ret:
        s.note("offline aborted by a signal")
        s.isolation_end(t)
        yield None
        yield from undo_isolate_page_range(s, t, start, end, MT.MOVABLE)
        if p.pcp_disable_in_offline and p.enable_on_fail:
            yield None
            yield from zone_pcp_enable(s, t)
        mem_hotplug_done(s, t)
        return ret
    s.isolation_end(t)
    yield from __offline_isolated_pages(s, t, start, end)
    yield None
    s.zone.nr_isolate_pageblock -= nr_pages // s.geo.pageblock_nr_pages
    if p.pcp_disable_in_offline:
        yield None
        yield from zone_pcp_enable(s, t)
    yield None
    s.zone.managed_pages -= nr_pages
    s.zone.present_pages -= nr_pages
    if s.zone.present_pages:
        yield from zone_pcp_update(s, t)
    else:
        zone_pcp_reset(s)
    s.note("offline succeeded")
    mem_hotplug_done(s, t)
    return 0


def online_pages(s: System, t: Task, block: int) -> TaskGen:
    """``online_pages`` of memory block ``block`` (spec §10.4): v5.10 onlines the pageblocks as
    ISOLATE and unisolates them after freeing the pages; v5.9 frees them as MOVABLE. It ends
    with ``zone_pcp_update``; before de1193f0be66 only when the zone was already populated."""
    p = s.profile
    start, end = s.geo.block_range(block)
    nr_pages = end - start
    yield from mem_hotplug_begin(s, t)
    if s.block_online[block]:
        mem_hotplug_done(s, t)
        return 0
    mt = MT.ISOLATE if p.online_as_isolated else MT.MOVABLE
    for pfn in range(start, end, s.geo.pageblock_nr_pages):
        set_pageblock_migratetype(s, pfn, mt)
    if p.online_as_isolated:
        yield None
        s.zone.nr_isolate_pageblock += nr_pages // s.geo.pageblock_nr_pages
    populated = bool(s.zone.present_pages)
    if not populated:
        yield from setup_zone_pageset(s, t)
    order = s.geo.max_order - 1
    for pfn in range(start, end, 1 << order):
        yield None
        s.zone.managed_pages += 1 << order
        s.page_present[pfn : pfn + (1 << order)] = [True] * (1 << order)
        s.dirty |= PRESENT
        free_one_page(s, pfn, order, mt, to_tail=p.fpi_to_tail)
    s.block_online[block] = True
    s.dirty |= ONLINE
    yield None
    s.zone.present_pages += nr_pages
    if p.online_pcp_update or populated:
        yield from zone_pcp_update(s, t)
    if p.online_as_isolated:
        yield None
        yield from undo_isolate_page_range(s, t, start, end, MT.MOVABLE)
    if s.tracing:
        s.klog(t.cpu, f"online_pages(pfn {start}-{end - 1}): online")
    s.note("online succeeded")
    mem_hotplug_done(s, t)
    return 0
