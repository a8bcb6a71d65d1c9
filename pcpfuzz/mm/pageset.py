"""Writing pcp high/batch: ``pageset_update`` and its callers, ``zone_pcp_disable`` /
``zone_pcp_enable`` and the fraction sysctl (spec §8.3-§8.5, §11). Each per-CPU write is its
own atomic step."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pcpfuzz.constants import EINVAL
from pcpfuzz.dirty import OPAQUE, PCP, SIZING
from pcpfuzz.mm.drain import __drain_all_pages
from pcpfuzz.mm.locking import mutex_lock, mutex_unlock
from pcpfuzz.mm.pcp import pcp_use
from pcpfuzz.mm.sizing import (
    BOOT_PAGESET_BATCH,
    BOOT_PAGESET_HIGH,
    MIN_PERCPU_PAGELIST_FRACTION,
    pageset_high_batch,
)
from pcpfuzz.state import PerCpuPages, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def zone_high_batch(s: System) -> tuple[int, int]:
    """The §8.2 pair for the zone's managed pages now (times the geometry's sizing scale)."""
    return pageset_high_batch(s.zone.managed_pages * s.geo.sizing_scale, s.fraction)


def pageset_update(s: System, t: Task, cpu: int, high: int, batch: int) -> TaskGen:
    """``pageset_update``: v5.10 writes batch:=1, high, batch; patch 4 writes batch, then high."""
    pcp = s.pcp[cpu]
    if s.tracing:
        s.klog(t.cpu, f"pageset_update(CPU{cpu}): high {pcp.high} -> {high}, batch -> {batch}")
    if s.profile.pageset_update_failsafe:
        pcp.batch = 1
        s.dirty |= SIZING
        yield None
        pcp_use(s, t, pcp, "pageset_update writes high to")
        pcp.high = high
        s.dirty |= SIZING
        yield None
        pcp_use(s, t, pcp, "pageset_update writes batch to")
        pcp.batch = batch
        s.dirty |= SIZING
    else:
        pcp.batch = batch
        s.dirty |= SIZING
        yield None
        pcp_use(s, t, pcp, "pageset_update writes high to")
        pcp.high = high
        s.dirty |= SIZING
    yield None
    return None


def __zone_set_pageset_high_and_batch(s: System, t: Task, high: int, batch: int) -> TaskGen:
    """``__zone_set_pageset_high_and_batch``: ``pageset_update`` on every possible CPU."""
    for cpu in range(s.geo.nr_cpus):
        yield from pageset_update(s, t, cpu, high, batch)
    return None


def zone_set_pageset_high_and_batch(s: System, t: Task) -> TaskGen:
    """``zone_set_pageset_high_and_batch`` (patch 2; patch 5's cache and early return). Before
    patch 2 (``pageset_set_high_and_batch``) the pair is computed again for each CPU."""
    if not s.profile.compute_once_per_zone:
        for cpu in range(s.geo.nr_cpus):
            high, batch = zone_high_batch(s)
            yield from pageset_update(s, t, cpu, high, batch)
        return None
    high, batch = zone_high_batch(s)
    if s.profile.cached_high_batch:
        yield from zone_set_cached_high_and_batch(s, t, high, batch)
        return None
    yield from __zone_set_pageset_high_and_batch(s, t, high, batch)
    return None


def zone_set_cached_high_and_batch(s: System, t: Task, high: int, batch: int) -> TaskGen:
    """Patch 5's cache in ``zone_set_pageset_high_and_batch`` (spec §8.5; 6.1 alike,
    modern-kernels §5.3): early return when (high, batch) equals the zone's cached pair; else
    cache it and ``__zone_set_pageset_high_and_batch``."""
    if (high, batch) == (s.zone.pageset_high, s.zone.pageset_batch):
        s.note("pageset update skipped: unchanged")
        return None
    s.zone.pageset_high, s.zone.pageset_batch = high, batch
    s.dirty |= SIZING
    yield from __zone_set_pageset_high_and_batch(s, t, high, batch)
    return None


def pageset_init(s: System) -> PerCpuPages:
    """``pageset_init``: an empty pageset; high 0, and batch 1 from patch 3 (0 before)."""
    batch = BOOT_PAGESET_BATCH if s.profile.pageset_init_boot_values else 0
    return PerCpuPages(high=BOOT_PAGESET_HIGH, batch=batch)


def setup_zone_pageset(s: System, t: Task) -> TaskGen:
    """``setup_zone_pageset``: fresh per-CPU pagesets for a zone becoming populated."""
    s.zone.pageset_is_boot = False
    s.pcp = [pageset_init(s) for _ in range(s.geo.nr_cpus)]
    s.dirty |= PCP | OPAQUE | SIZING
    yield None
    yield from zone_set_pageset_high_and_batch(s, t)
    return None


def zone_pcp_reset(s: System) -> None:
    """``zone_pcp_reset`` (5.10 PA 10778, 5.11 PA 8844): an emptied zone goes back to the boot
    pageset (high 0, batch 1); a pageset that was not the boot one is freed (``free_percpu``).
    The v5.11 cache is not reset (spec §8.5)."""
    if not s.zone.pageset_is_boot:
        for pcp in s.pcp:
            pcp.freed = True
    s.zone.pageset_is_boot = True
    s.pcp = [PerCpuPages(high=BOOT_PAGESET_HIGH, batch=BOOT_PAGESET_BATCH) for _ in s.pcp]
    s.dirty |= PCP | OPAQUE | SIZING


def zone_pcp_update(s: System, t: Task) -> TaskGen:
    """``zone_pcp_update``: recompute under ``pcp_batch_high_lock``."""
    yield from mutex_lock(s, t, s.pcp_batch_high_lock)
    yield from zone_set_pageset_high_and_batch(s, t)
    mutex_unlock(s, t, s.pcp_batch_high_lock)
    return None


def run_pagelist_fraction_sysctl(
    s: System,
    t: Task,
    value: int,
    name: str,
    min_fraction: int,
    recompute: Callable[[System, Task], TaskGen],
) -> TaskGen:
    """A fraction sysctl handler (5.x ``vm.percpu_pagelist_fraction``, spec §8.2; 6.1/6.12
    ``vm.percpu_pagelist_high_fraction``, modern-kernels §5.2) with its ``name``, minimum and
    ``recompute``: under ``pcp_batch_high_lock``, EINVAL for negatives and 1..min - 1, nothing
    when unchanged, else ``recompute`` the populated zone."""
    yield from mutex_lock(s, t, s.pcp_batch_high_lock)
    old = s.fraction
    ret = 0
    if value < 0 or 0 < value < min_fraction:
        ret = EINVAL
    elif value != old:
        s.fraction = value
        s.dirty |= SIZING
        if s.zone.present_pages:
            yield None
            yield from recompute(s, t)
    if s.tracing:
        s.klog(t.cpu, f"{name}: {old} -> {value}: {ret}")
    mutex_unlock(s, t, s.pcp_batch_high_lock)
    return ret


def percpu_pagelist_fraction_sysctl_handler(s: System, t: Task, value: int) -> TaskGen:
    """The ``vm.percpu_pagelist_fraction`` handler (spec §8.2): ``run_pagelist_fraction_sysctl``
    with minimum 8 and ``zone_set_pageset_high_and_batch``."""
    return (
        yield from run_pagelist_fraction_sysctl(
            s,
            t,
            value,
            "percpu_pagelist_fraction",
            MIN_PERCPU_PAGELIST_FRACTION,
            zone_set_pageset_high_and_batch,
        )
    )


def zone_pcp_disable(s: System, t: Task) -> TaskGen:
    """``zone_pcp_disable`` (spec §11): take ``pcp_batch_high_lock`` and keep it, write (0, 1)
    on every possible CPU, then drain every online CPU (forced)."""
    yield from mutex_lock(s, t, s.pcp_batch_high_lock)
    if s.tracing:
        s.klog(t.cpu, "zone_pcp_disable: high 0, batch 1 on all CPUs")
    yield from __zone_set_pageset_high_and_batch(s, t, BOOT_PAGESET_HIGH, BOOT_PAGESET_BATCH)
    yield from __drain_all_pages(s, t, zone=True, force=s.profile.forced_drain)
    t.pcp_disabled_depth += 1
    s.pcp_disabled = True
    if s.inflight:
        s.note("pcp disabled while a free was in flight")
    return None


def zone_pcp_enable(s: System, t: Task) -> TaskGen:
    """``zone_pcp_enable``: restore the zone's cached high/batch, release the lock."""
    s.pcp_disabled = False
    t.pcp_disabled_depth -= 1
    if s.tracing:
        s.klog(t.cpu, f"zone_pcp_enable: high {s.zone.pageset_high}, batch {s.zone.pageset_batch}")
    yield from __zone_set_pageset_high_and_batch(s, t, s.zone.pageset_high, s.zone.pageset_batch)
    mutex_unlock(s, t, s.pcp_batch_high_lock)
    return None
