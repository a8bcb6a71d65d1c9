"""v6.12 pcp sizing writes (modern-kernels §5.2, §5.3, §5.5, §6.1): updaters write
``(batch, high_min, high_max)`` and never ``pcp->high``; the zone caches the triple; the
watermarks are 6.1's (imported), followed by ``zone_pcp_update`` after every recompute."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from pcpfuzz.dirty import OPAQUE, PCP, SIZING
from pcpfuzz.mm.locking import mutex_unlock
from pcpfuzz.mm.pcp import pcp_use
from pcpfuzz.mm.sizing import (
    BOOT_PAGESET_BATCH,
    BOOT_PAGESET_HIGH,
)
from pcpfuzz.mm6.pageset import (
    __setup_per_zone_wmarks,
    run_high_fraction_sysctl,
    run_setup_per_zone_wmarks,
    run_setup_zone_pageset,
    run_zone_pcp_disable,
    run_zone_pcp_update,
)
from pcpfuzz.mm6.pageset import zone_pcp_reset as zone_pcp_reset61
from pcpfuzz.mm612.drain import __drain_all_pages
from pcpfuzz.mm612.percpu import PerCpuPages612, ZonePageset612
from pcpfuzz.mm612.sizing import pcp_high_min_max_batch
from pcpfuzz.state import SpinLock, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System

DISABLED = (BOOT_PAGESET_HIGH, BOOT_PAGESET_HIGH, BOOT_PAGESET_BATCH)
"""``zone_pcp_disable``'s triple (0, 0, 1), also the boot pageset's."""


def zone_high_min_max_batch(s: System, cpu_online: int = 0) -> tuple[int, int, int]:
    """``zone_set_pageset_high_and_batch``'s triple (§5.3) for the zone now: batch from the
    managed pages times the geometry's sizing scale, ``high_min`` from the low watermark and
    ``high_max`` from managed / 8 (or both from managed / fraction), over the online CPUs."""
    nr = sum(c.online for c in s.cpus) + cpu_online
    return pcp_high_min_max_batch(
        s.zone.managed_pages,
        s.zone.watermark[1],
        nr,
        s.fraction,
        batch_pages=s.zone.managed_pages * s.geo.sizing_scale,
    )


def pageset_update(s: System, t: Task, cpu: int, triple: tuple[int, int, int]) -> TaskGen:
    """v6.12 ``pageset_update``: ``WRITE_ONCE`` batch, high_min, high_max, one step each
    (§7.2 item 6); the owner's ``high`` is left to its next clamp."""
    high_min, high_max, batch = triple
    pcp = s.pcp[cpu]
    if s.tracing:
        s.klog(
            t.cpu, f"pageset_update(CPU{cpu}): high_min/max/batch -> {high_min}/{high_max}/{batch}"
        )
    pcp.batch, pcp.clamped = batch, False
    s.dirty |= SIZING
    yield None
    pcp_use(s, t, pcp, "pageset_update writes high_min to")
    pcp.high_min, pcp.clamped = high_min, False
    s.dirty |= SIZING
    yield None
    pcp_use(s, t, pcp, "pageset_update writes high_max to")
    pcp.high_max, pcp.clamped = high_max, False
    s.dirty |= SIZING
    yield None
    return None


def __zone_set_pageset_high_and_batch(s: System, t: Task, triple: tuple[int, int, int]) -> TaskGen:
    """``__zone_set_pageset_high_and_batch``: ``pageset_update`` on every possible CPU."""
    for cpu in range(len(s.pcp)):
        yield from pageset_update(s, t, cpu, triple)
    return None


def zone_set_pageset_high_and_batch(s: System, t: Task, cpu_online: int) -> TaskGen:
    """v6.12 ``zone_set_pageset_high_and_batch`` (§5.3): early return when the triple equals
    the zone's cache; else cache it and write it to every possible CPU."""
    triple = zone_high_min_max_batch(s, cpu_online)
    if triple == s.zone612.triple():
        s.note("pageset update skipped: unchanged")
        return None
    s.zone612.high_min, s.zone612.high_max, s.zone612.batch = triple
    s.dirty |= SIZING
    yield from __zone_set_pageset_high_and_batch(s, t, triple)
    return None


def zone_pcp_update(s: System, t: Task, cpu_online: int) -> TaskGen:
    """v6.12 ``zone_pcp_update(zone, cpu_online)`` (§5.3): the above under
    ``pcp_batch_high_lock`` (6.1's ``run_zone_pcp_update``)."""
    yield from run_zone_pcp_update(s, t, cpu_online, zone_set_pageset_high_and_batch)
    return None


def init_per_zone_wmark_min(s: System, t: Task) -> TaskGen:
    """v6.12 ``init_per_zone_wmark_min`` -> ``setup_per_zone_wmarks`` (§5.5): 6.1's
    (``run_setup_per_zone_wmarks``: the watermarks under ``zone->lock``, one step, then
    ``zone_pcp_update(zone, 0)``) with the v6.12 ``zone_pcp_update``."""
    yield from run_setup_per_zone_wmarks(s, t, zone_pcp_update)
    return None


def per_cpu_pages_init(s: System, lock: SpinLock) -> PerCpuPages612:
    """v6.12 ``per_cpu_pages_init`` (§5.3): empty lists, high_min = high_max = 0, batch 1,
    ``free_count`` 0. The model keeps each CPU's ``lock`` object across pagesets."""
    return PerCpuPages612(lock, s.geo.pageblock_order)


def setup_zone_pageset(s: System, t: Task) -> TaskGen:
    """v6.12 ``setup_zone_pageset`` (§5.3): 6.1's (``run_setup_zone_pageset``: fresh pagesets,
    then ``zone_set_pageset_high_and_batch(zone, 0)``) with the v6.12 callees."""
    yield from run_setup_zone_pageset(s, t, per_cpu_pages_init, zone_set_pageset_high_and_batch)
    return None


def zone_pcp_reset(s: System) -> None:
    """6.12 ``zone_pcp_reset``: 6.1's (imported) with v6.12 boot pagesets; the zone's cache of
    the triple is kept."""
    zone_pcp_reset61(s, per_cpu_pages_init)


def percpu_pagelist_high_fraction_sysctl_handler(s: System, t: Task, value: int) -> TaskGen:
    """v6.12 ``percpu_pagelist_high_fraction_sysctl_handler`` (§5.2): 6.1's
    (``run_high_fraction_sysctl``) with the v6.12 ``zone_set_pageset_high_and_batch``."""
    return (yield from run_high_fraction_sysctl(s, t, value, zone_set_pageset_high_and_batch))


def zone_pcp_disable(s: System, t: Task) -> TaskGen:
    """v6.12 ``zone_pcp_disable`` (§6.1): 6.1's (``run_zone_pcp_disable``: take
    ``pcp_batch_high_lock`` and keep it, write the disabled sizes on every possible CPU, then
    ``__drain_all_pages(zone, true)``) writing (0, 0, 1) with the v6.12 callees."""
    write = partial(__zone_set_pageset_high_and_batch, triple=DISABLED)
    yield from run_zone_pcp_disable(
        s, t, "high_min 0, high_max 0, batch 1", write, __drain_all_pages
    )
    return None


def zone_pcp_enable(s: System, t: Task) -> TaskGen:
    """v6.12 ``zone_pcp_enable``: the zone's cached triple on every CPU, then release
    ``pcp_batch_high_lock``."""
    s.pcp_disabled = False
    t.pcp_disabled_depth -= 1
    yield from __zone_set_pageset_high_and_batch(s, t, s.zone612.triple())
    mutex_unlock(s, t, s.pcp_batch_high_lock)
    return None


def v612_boot(s: System) -> None:
    """Boot: the pagesets and their locks, the zone's cache, the watermarks, the triple."""
    s.zone612 = ZonePageset612()
    s.pcp = [per_cpu_pages_init(s, SpinLock(f"pcp{cpu}->lock")) for cpu in range(len(s.pcp))]
    s.dirty |= PCP | OPAQUE | SIZING
    s.spinlocks[:] = [s.zone_lock, *(pcp.lock for pcp in s.pcp)]
    if not s.zone.present_pages:
        return
    __setup_per_zone_wmarks(s)
    triple = zone_high_min_max_batch(s)
    s.zone.pageset_is_boot = False
    s.zone612.high_min, s.zone612.high_max, s.zone612.batch = triple
    s.dirty |= SIZING
    for pcp in s.pcp:
        pcp.high_min, pcp.high_max, pcp.batch = triple
        s.dirty |= SIZING
