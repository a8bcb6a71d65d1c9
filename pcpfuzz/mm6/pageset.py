"""v6.1 watermarks and pcp sizing (modern-kernels §5, §6.1): ``pcp->high`` follows the zone's
low watermark split across the online CPUs; ``zone_pcp_update`` runs after every watermark
recompute, CPU hotplug and high-fraction sysctl write."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from pcpfuzz.dirty import OPAQUE, PCP, SIZING
from pcpfuzz.mm.locking import mutex_lock, mutex_unlock, spin_lock, spin_unlock
from pcpfuzz.mm.pageset import (
    __zone_set_pageset_high_and_batch,
    run_pagelist_fraction_sysctl,
    zone_set_cached_high_and_batch,
)
from pcpfuzz.mm.sizing import (
    BOOT_PAGESET_BATCH,
    BOOT_PAGESET_HIGH,
    MIN_PERCPU_PAGELIST_HIGH_FRACTION,
    PAGE_SHIFT,
    zone_batchsize,
    zone_highsize,
)
from pcpfuzz.mm6.drain import __drain_all_pages
from pcpfuzz.state import PerCpuPages61, SpinLock, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.mm612.percpu import PerCpuPages612
    from pcpfuzz.system import System

WATERMARK_SCALE_FACTOR = 10

Watermarks = tuple[int, int, int]
"""A zone's ``_watermark[WMARK_MIN]``, ``[WMARK_LOW]``, ``[WMARK_HIGH]``."""


def min_free_pages(min_free_kbytes: int) -> int:
    """``__setup_per_zone_wmarks``' ``pages_min``: ``min_free_kbytes >> (PAGE_SHIFT - 10)``."""
    return min_free_kbytes >> (PAGE_SHIFT - 10)


def zone_watermarks(
    managed: int, pages_min: int, lowmem: int, scale_factor: int = WATERMARK_SCALE_FACTOR
) -> Watermarks:
    """``__setup_per_zone_wmarks`` for one lowmem zone (§5.5): (min, low, high)."""
    wmin = pages_min * managed // lowmem if lowmem else 0
    delta = max(wmin >> 2, managed * scale_factor // 10000)
    return wmin, wmin + delta, wmin + 2 * delta


def per_zone_wmarks(
    pages_min: int, managed: Sequence[int], scale_factor: int = WATERMARK_SCALE_FACTOR
) -> list[Watermarks]:
    """``__setup_per_zone_wmarks`` (§5.5) over every zone of a machine without HIGHMEM (v6.1
    counts ZONE_MOVABLE as lowmem): ``pages_min`` shared in proportion to the managed pages."""
    lowmem = sum(managed)
    return [zone_watermarks(m, pages_min, lowmem, scale_factor) for m in managed]


def pcp_high_batch(
    managed_pages: int,
    low_wmark: int,
    nr_split_cpus: int,
    high_fraction: int,
    sizing_scale: int = 1,
) -> tuple[int, int]:
    """``zone_set_pageset_high_and_batch``'s pair (§5.3): ``batch = max(1, zone_batchsize)``
    (of the managed pages times the model's ``sizing_scale``, 1 at kernel scale), ``high =
    zone_highsize`` (§5.2)."""
    batch = max(1, zone_batchsize(managed_pages * sizing_scale))
    high = zone_highsize(managed_pages, low_wmark, batch, nr_split_cpus, high_fraction)
    return high, batch


def pages_min(s: System) -> int:
    """The model-scale ``min_free_kbytes >> 2`` (§5.6): the geometry's knob, else managed // 32
    of the zone now (the model's ``calculate_min_free_kbytes``)."""
    return s.geo.pages_min if s.geo.pages_min is not None else s.zone.managed_pages // 32


def __setup_per_zone_wmarks(s: System) -> None:
    """``__setup_per_zone_wmarks`` (§5.5), the zone being the only lowmem zone."""
    (s.zone.watermark,) = per_zone_wmarks(pages_min(s), (s.zone.managed_pages,))
    s.dirty |= SIZING


def zone_high_batch(s: System, cpu_online: int = 0) -> tuple[int, int]:
    """``zone_set_pageset_high_and_batch``'s pair for the zone now: its managed pages, its low
    watermark, the online CPUs (plus ``cpu_online``) and the fraction."""
    nr = sum(c.online for c in s.cpus) + cpu_online
    return pcp_high_batch(
        s.zone.managed_pages, s.zone.watermark[1], nr, s.fraction, s.geo.sizing_scale
    )


def zone_set_pageset_high_and_batch(s: System, t: Task, cpu_online: int) -> TaskGen:
    """v6.1 ``zone_set_pageset_high_and_batch`` (§5.3): the v6.1 pair through 5.11's cache
    (``zone_set_cached_high_and_batch``: early return when unchanged, else cache it and
    ``pageset_update`` every possible CPU, batch then high)."""
    yield from zone_set_cached_high_and_batch(s, t, *zone_high_batch(s, cpu_online))
    return None


def run_zone_pcp_update(
    s: System,
    t: Task,
    cpu_online: int,
    zone_set_pageset_high_and_batch: Callable[[System, Task, int], TaskGen],
) -> TaskGen:
    """6.1/6.12 ``zone_pcp_update(zone, cpu_online)`` with a kernel's
    ``zone_set_pageset_high_and_batch``, which it runs under ``pcp_batch_high_lock``."""
    yield from mutex_lock(s, t, s.pcp_batch_high_lock)
    yield from zone_set_pageset_high_and_batch(s, t, cpu_online)
    mutex_unlock(s, t, s.pcp_batch_high_lock)
    return None


def zone_pcp_update(s: System, t: Task, cpu_online: int) -> TaskGen:
    """v6.1 ``zone_pcp_update(zone, cpu_online)`` (§5.3): the above under
    ``pcp_batch_high_lock`` (``run_zone_pcp_update``)."""
    yield from run_zone_pcp_update(s, t, cpu_online, zone_set_pageset_high_and_batch)
    return None


def run_setup_per_zone_wmarks(
    s: System, t: Task, zone_pcp_update: Callable[[System, Task, int], TaskGen]
) -> TaskGen:
    """6.1/6.12 ``setup_per_zone_wmarks`` (§5.5) with a kernel's ``zone_pcp_update``: the
    watermarks under ``zone->lock`` (one step), then ``zone_pcp_update(zone, 0)``."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    __setup_per_zone_wmarks(s)
    spin_unlock(s, t, s.zone_lock)
    if s.tracing:
        s.klog(t.cpu, f"setup_per_zone_wmarks: min/low/high {s.zone.watermark}")
    yield None
    yield from zone_pcp_update(s, t, 0)
    return None


def setup_per_zone_wmarks(s: System, t: Task) -> TaskGen:
    """v6.1 ``setup_per_zone_wmarks`` (§5.5): ``run_setup_per_zone_wmarks`` with the v6.1
    ``zone_pcp_update``."""
    yield from run_setup_per_zone_wmarks(s, t, zone_pcp_update)
    return None


def init_per_zone_wmark_min(s: System, t: Task) -> TaskGen:
    """``init_per_zone_wmark_min`` (§5.5): ``min_free_kbytes`` (here ``pages_min``) follows
    the managed pages, then ``setup_per_zone_wmarks``."""
    yield from setup_per_zone_wmarks(s, t)
    return None


def per_cpu_pages_init(s: System, lock: SpinLock) -> PerCpuPages61:
    """``per_cpu_pages_init`` (§5.3): empty lists, high 0, batch 1, ``free_factor`` 0. The
    model keeps each CPU's ``lock`` object across pagesets."""
    return PerCpuPages61(
        lock,
        s.geo.pageblock_order,
        high=BOOT_PAGESET_HIGH,
        batch=BOOT_PAGESET_BATCH,
    )


def run_setup_zone_pageset(
    s: System,
    t: Task,
    init: Callable[[System, SpinLock], PerCpuPages61 | PerCpuPages612],
    zone_set_pageset_high_and_batch: Callable[[System, Task, int], TaskGen],
) -> TaskGen:
    """6.1/6.12 ``setup_zone_pageset`` with a kernel's ``per_cpu_pages_init`` (``init``) and
    ``zone_set_pageset_high_and_batch``: fresh pagesets for a zone becoming populated, then
    ``zone_set_pageset_high_and_batch(zone, 0)`` (the zone's cache is not reset)."""
    s.zone.pageset_is_boot = False
    s.pcp = [init(s, pcp.lock) for pcp in s.pcp]
    s.dirty |= PCP | OPAQUE | SIZING
    yield None
    yield from zone_set_pageset_high_and_batch(s, t, 0)
    return None


def setup_zone_pageset(s: System, t: Task) -> TaskGen:
    """v6.1 ``setup_zone_pageset`` (§5.3): ``run_setup_zone_pageset`` with the v6.1 callees."""
    yield from run_setup_zone_pageset(s, t, per_cpu_pages_init, zone_set_pageset_high_and_batch)
    return None


def zone_pcp_reset(
    s: System, init: Callable[[System, SpinLock], PerCpuPages61 | PerCpuPages612] | None = None
) -> None:
    """6.1/6.12 ``zone_pcp_reset`` (6.1 PA 9523, 6.12 PA 6794): an emptied zone goes back to
    ``boot_pageset`` (``init``'s fresh pagesets: v6.1's high 0, batch 1 by default); a pageset
    that was not the boot one is freed (``free_percpu(zone->per_cpu_pageset)``: PCP-UAF for a
    task still holding it). Not under ``pcp_batch_high_lock``; the zone's cache is kept."""
    if not s.zone.pageset_is_boot:
        for pcp in s.pcp:
            pcp.freed = True
    s.zone.pageset_is_boot = True
    s.pcp = [(init or per_cpu_pages_init)(s, pcp.lock) for pcp in s.pcp]
    s.dirty |= PCP | OPAQUE | SIZING


def run_high_fraction_sysctl(
    s: System,
    t: Task,
    value: int,
    zone_set_pageset_high_and_batch: Callable[[System, Task, int], TaskGen],
) -> TaskGen:
    """6.1/6.12 ``percpu_pagelist_high_fraction_sysctl_handler`` (§5.2) with a kernel's
    ``zone_set_pageset_high_and_batch``: 5.x's ``run_pagelist_fraction_sysctl`` (under
    ``pcp_batch_high_lock``, EINVAL for negatives and 1..7, nothing when unchanged) recomputing
    with ``zone_set_pageset_high_and_batch(zone, 0)``."""
    return (
        yield from run_pagelist_fraction_sysctl(
            s,
            t,
            value,
            "percpu_pagelist_high_fraction",
            MIN_PERCPU_PAGELIST_HIGH_FRACTION,
            lambda s, t: zone_set_pageset_high_and_batch(s, t, 0),
        )
    )


def percpu_pagelist_high_fraction_sysctl_handler(s: System, t: Task, value: int) -> TaskGen:
    """v6.1 ``percpu_pagelist_high_fraction_sysctl_handler`` (§5.2): ``run_high_fraction_sysctl``
    with the v6.1 ``zone_set_pageset_high_and_batch``."""
    return (yield from run_high_fraction_sysctl(s, t, value, zone_set_pageset_high_and_batch))


def run_zone_pcp_disable(
    s: System,
    t: Task,
    what: str,
    write_disabled: Callable[[System, Task], TaskGen],
    drain_all: Callable[[System, Task, bool, bool], TaskGen],
) -> TaskGen:
    """6.1/6.12 ``zone_pcp_disable`` (§6.1) with a kernel's callees: take
    ``pcp_batch_high_lock`` and keep it, ``write_disabled`` (the disabled sizes, ``what``) on
    every possible CPU, then ``drain_all`` (``__drain_all_pages(zone, true)``) from this task."""
    yield from mutex_lock(s, t, s.pcp_batch_high_lock)
    if s.tracing:
        s.klog(t.cpu, f"zone_pcp_disable: {what} on all CPUs")
    yield from write_disabled(s, t)
    yield from drain_all(s, t, True, True)
    t.pcp_disabled_depth += 1
    s.pcp_disabled = True
    return None


def zone_pcp_disable(s: System, t: Task) -> TaskGen:
    """v6.1 ``zone_pcp_disable`` (§6.1): ``run_zone_pcp_disable`` writing (0, 1) with 5.x's
    ``__zone_set_pageset_high_and_batch`` and draining with v6.1 ``__drain_all_pages``."""
    write = partial(
        __zone_set_pageset_high_and_batch, high=BOOT_PAGESET_HIGH, batch=BOOT_PAGESET_BATCH
    )
    yield from run_zone_pcp_disable(s, t, "high 0, batch 1", write, __drain_all_pages)
    return None


def v61_boot(s: System) -> None:
    """Boot: the pagesets and their locks, the watermarks, then the pcp sizes."""
    s.pcp = [per_cpu_pages_init(s, SpinLock(f"pcp{cpu}->lock")) for cpu in range(len(s.pcp))]
    s.dirty |= PCP | OPAQUE | SIZING
    s.spinlocks[:] = [s.zone_lock, *(pcp.lock for pcp in s.pcp)]
    if not s.zone.present_pages:
        return
    __setup_per_zone_wmarks(s)
    high, batch = zone_high_batch(s)
    s.zone.pageset_is_boot = False
    s.zone.pageset_high, s.zone.pageset_batch = high, batch
    s.dirty |= SIZING
    for pcp in s.pcp:
        pcp.high, pcp.batch = high, batch
        s.dirty |= SIZING
