"""v6.12 mm/memory_hotplug.c (modern-kernels §6.5, §6.6): offline isolates inside
``zone_pcp_disable`` and drains nothing in its retry loop; the offlined free blocks leave the
ISOLATE lists through the type-checked ``del_page_from_free_list``; online frees its chunks
through ``free_one_page`` (``split_large_buddy``); both end with ``init_per_zone_wmark_min``."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from pcpfuzz.constants import MT
from pcpfuzz.dirty import ONLINE
from pcpfuzz.mm.hotplug import remove_free_blocks
from pcpfuzz.mm.locking import spin_lock, spin_unlock
from pcpfuzz.mm6.memory_hotplug import HotplugCallees, run_offline_pages, run_online_pages
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
    s.dirty |= ONLINE
    yield None
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    remove_free_blocks(s, start, end, partial(del_page_from_free_list, mt=MT.ISOLATE))
    spin_unlock(s, t, s.zone_lock)
    return None


def free_one_page(s: System, pfn: int, order: int) -> None:
    """v6.12 ``free_one_page`` from ``__free_pages_core`` with FPI_TO_TAIL (§6.6):
    ``split_large_buddy`` onto the pageblock's list, under the caller's ``zone->lock``."""
    split_large_buddy(s, pfn, order, to_tail=True)


V612_HOTPLUG = HotplugCallees(
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
    """v6.12 ``offline_pages`` (§6.5): 6.1's (``run_offline_pages``: ``zone_pcp_disable`` and
    ``lru_cache_disable``; isolate; MEM_GOING_OFFLINE; migrate and test until every page is free;
    offline; ``zone_pcp_enable``; ``init_per_zone_wmark_min``; ``zone_pcp_reset`` if the zone
    emptied) with the v6.12 callees."""
    return (yield from run_offline_pages(s, t, block, V612_HOTPLUG))


def online_pages(s: System, t: Task, block: int) -> TaskGen:
    """v6.12 ``online_pages`` (§6.6): 6.1's (``run_online_pages``) with the v6.12 callees: each
    MAX_ORDER-1 chunk freed by ``__free_pages_core`` goes through ``free_one_page``
    (``split_large_buddy``) onto the ISOLATE lists."""
    return (yield from run_online_pages(s, t, block, V612_HOTPLUG))
