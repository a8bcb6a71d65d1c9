"""v6.1 mm/memory_hotplug.c (modern-kernels §6.5, §6.6): offline isolates inside
``zone_pcp_disable`` and drains nothing in its retry loop; online and offline end with
``init_per_zone_wmark_min`` (watermarks, then ``zone_pcp_update``). v6.12 runs the same
``offline_pages`` and ``online_pages`` (``run_offline_pages``, ``run_online_pages``) with its own
callees (``HotplugCallees``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from pcpfuzz.constants import MT
from pcpfuzz.dirty import ONLINE, PRESENT
from pcpfuzz.mm.buddy import get_pfnblock_migratetype, set_pageblock_migratetype
from pcpfuzz.mm.hotplug import (
    __offline_isolated_pages,
    mem_hotplug_begin,
    mem_hotplug_done,
    offline_retry_loop,
)
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.mm.pageset import zone_pcp_enable
from pcpfuzz.mm.slub import flush_all_cpus_locked
from pcpfuzz.mm6.buddy import __free_one_page
from pcpfuzz.mm6.page_isolation import start_isolate_page_range, undo_isolate_page_range
from pcpfuzz.mm6.pageset import (
    init_per_zone_wmark_min,
    setup_zone_pageset,
    zone_pcp_disable,
    zone_pcp_reset,
)
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def memory_notify_going_offline(s: System, t: Task) -> TaskGen:
    """6.1/6.12 ``memory_notify(MEM_GOING_OFFLINE)`` (6.1 MH 1863, 6.12 MH 2006), right after
    the isolation: SLUB's ``slab_mem_going_offline_callback`` runs ``flush_all_cpus_locked``
    for every cache; one stands for them all, as in 5.x (``mm.slub``)."""
    yield from flush_all_cpus_locked(s, t)
    return None


@attrs.frozen
class HotplugCallees:
    """The functions 6.1's and 6.12's ``offline_pages``/``online_pages`` call that differ."""

    zone_pcp_disable: Callable[[System, Task], TaskGen]
    zone_pcp_enable: Callable[[System, Task], TaskGen]
    start_isolate_page_range: Callable[[System, Task, int, int, MT], TaskGen]
    undo_isolate_page_range: Callable[[System, Task, int, int, MT], TaskGen]
    offline_isolated_pages: Callable[[System, Task, int, int], TaskGen]
    """``__offline_isolated_pages``."""
    init_per_zone_wmark_min: Callable[[System, Task], TaskGen]
    zone_pcp_reset: Callable[[System], None]
    setup_zone_pageset: Callable[[System, Task], TaskGen]
    free_one_page: Callable[[System, int, int], None]
    """``__free_pages_core``'s free of one chunk (pfn, order), under the caller's ``zone->lock``."""


def run_offline_pages(s: System, t: Task, block: int, k: HotplugCallees) -> TaskGen:
    """6.1/6.12 ``offline_pages`` (§6.5) with a kernel's callees ``k``: ``mem_hotplug_begin``;
    ``zone_pcp_disable`` (and ``lru_cache_disable``); isolate; MEM_GOING_OFFLINE; migrate and test
    until every page is free, checking ``signal_pending`` each pass; offline the free pages;
    ``zone_pcp_enable``; adjust the managed pages; ``init_per_zone_wmark_min``;
    ``zone_pcp_reset`` if the zone emptied."""
    start, end = s.geo.block_range(block)
    yield from mem_hotplug_begin(s, t)
    if not s.block_online[block]:
        mem_hotplug_done(s, t)
        return 0
    yield None
    yield from k.zone_pcp_disable(s, t)
    yield None
    ret = yield from k.start_isolate_page_range(s, t, start, end, MT.MOVABLE)
    if ret:
        s.note("offline failed: isolation")
        yield None
        yield from k.zone_pcp_enable(s, t)
        mem_hotplug_done(s, t)
        return ret
    s.isolation_begin(t, start, end, "offline")
    yield from memory_notify_going_offline(s, t)
    ret = yield from offline_retry_loop(s, t, start, end, retry_drain=False)
    s.isolation_end(t)
    if ret:
        s.note("offline aborted by a signal")
        yield None
        yield from k.undo_isolate_page_range(s, t, start, end, MT.MOVABLE)
        yield None
        yield from k.zone_pcp_enable(s, t)
        mem_hotplug_done(s, t)
        return ret
    yield from k.offline_isolated_pages(s, t, start, end)
    yield None
    s.zone.nr_isolate_pageblock -= (end - start) // s.geo.pageblock_nr_pages
    yield None
    yield from k.zone_pcp_enable(s, t)
    yield None
    s.zone.managed_pages -= end - start
    s.zone.present_pages -= end - start
    yield from k.init_per_zone_wmark_min(s, t)
    if not s.zone.present_pages:
        k.zone_pcp_reset(s)
    s.note("offline succeeded")
    mem_hotplug_done(s, t)
    return 0


def run_online_pages(s: System, t: Task, block: int, k: HotplugCallees) -> TaskGen:
    """6.1/6.12 ``online_pages`` (§6.6) with a kernel's callees ``k``: the pageblocks start
    ISOLATE; ``setup_zone_pageset`` if the zone was empty; each MAX_ORDER-1 chunk freed by
    ``__free_pages_core`` (managed pages, then the free under ``zone->lock``: onto the ISOLATE
    lists); unisolate; ``init_per_zone_wmark_min``."""
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
        yield from k.setup_zone_pageset(s, t)
    order = s.geo.max_order - 1
    for pfn in range(start, end, 1 << order):
        yield None
        # The model's ghost "present" turns on with the free, once the lock is taken.
        yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
        s.zone.managed_pages += 1 << order
        s.page_present[pfn : pfn + (1 << order)] = [True] * (1 << order)
        s.dirty |= PRESENT
        k.free_one_page(s, pfn, order)
        spin_unlock(s, t, s.zone_lock)
    s.block_online[block] = True
    s.dirty |= ONLINE
    yield None
    s.zone.present_pages += end - start
    yield from k.undo_isolate_page_range(s, t, start, end, MT.MOVABLE)
    yield None
    yield from k.init_per_zone_wmark_min(s, t)
    s.note("online succeeded")
    mem_hotplug_done(s, t)
    return 0


def free_one_page(s: System, pfn: int, order: int) -> None:
    """v6.1 ``free_one_page`` from ``__free_pages_ok`` (§2.5): ``__free_one_page`` with the
    pageblock's type, under the caller's ``zone->lock``."""
    __free_one_page(s, pfn, order, get_pfnblock_migratetype(s, pfn))


V61_HOTPLUG = HotplugCallees(
    zone_pcp_disable=zone_pcp_disable,
    zone_pcp_enable=zone_pcp_enable,
    start_isolate_page_range=start_isolate_page_range,
    undo_isolate_page_range=undo_isolate_page_range,
    offline_isolated_pages=__offline_isolated_pages,
    init_per_zone_wmark_min=init_per_zone_wmark_min,
    zone_pcp_reset=zone_pcp_reset,
    setup_zone_pageset=setup_zone_pageset,
    free_one_page=free_one_page,
)


def offline_pages(s: System, t: Task, block: int) -> TaskGen:
    """v6.1 ``offline_pages`` (§6.5): ``run_offline_pages`` with the v6.1 callees (5.x's
    ``__offline_isolated_pages``)."""
    return (yield from run_offline_pages(s, t, block, V61_HOTPLUG))


def online_pages(s: System, t: Task, block: int) -> TaskGen:
    """v6.1 ``online_pages`` (§6.6): ``run_online_pages`` with the v6.1 callees."""
    return (yield from run_online_pages(s, t, block, V61_HOTPLUG))
