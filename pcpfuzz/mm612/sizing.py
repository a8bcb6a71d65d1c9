"""v6.12 pcp sizing as pure functions of numbers (modern-kernels §1.4, §5.1-§5.3, §5.5).

``zone_batchsize``, ``zone_highsize`` (6.12 passes the fraction as an argument) and the ordinary
zone's watermarks are 6.1's formulas and are imported; what is new in 6.12 is the
``(high_min, high_max, batch)`` triple and the 6.12 form of ``clamp``.
"""

from pcpfuzz.mm.sizing import MIN_PERCPU_PAGELIST_HIGH_FRACTION, zone_batchsize, zone_highsize
from pcpfuzz.mm6.pageset import zone_watermarks

__all__ = ["clamp", "pcp_high_min_max_batch", "zone_batchsize", "zone_highsize", "zone_watermarks"]


def clamp(val: int, lo: int, hi: int) -> int:
    """6.12 ``include/linux/minmax.h`` ``clamp`` (§1.4): ``hi`` if ``val >= hi``, else ``lo`` if
    ``val <= lo``, else ``val`` (with ``lo > hi`` this differs from 6.1's ``min(max(..))``)."""
    if val >= hi:
        return hi
    return lo if val <= lo else val


def pcp_high_min_max_batch(
    managed_pages: int,
    low_wmark: int,
    nr_cpus: int,
    high_fraction: int,
    *,
    batch_pages: int | None = None,
) -> tuple[int, int, int]:
    """(high_min, high_max, batch) of 6.12 ``zone_set_pageset_high_and_batch`` (§5.3).

    ``batch = max(1, zone_batchsize)``; with ``percpu_pagelist_high_fraction`` set,
    ``high_min = high_max = zone_highsize(.., fraction)`` (auto-tuning off); else
    ``high_min = zone_highsize(.., 0)`` (the low watermark split over ``nr_cpus``) and
    ``high_max = zone_highsize(.., MIN_PERCPU_PAGELIST_HIGH_FRACTION)`` (managed / 8 split).
    ``nr_cpus`` is ``zone_highsize``'s ``nr_split_cpus`` (node CPUs + ``cpu_online``), at least 1.
    ``batch_pages`` is the managed count ``zone_batchsize`` sees (the model's sizing scale;
    default ``managed_pages``, as in the kernel).
    """
    if nr_cpus < 1:
        raise ValueError(f"nr_cpus must be at least 1, got {nr_cpus}")
    batch = max(1, zone_batchsize(managed_pages if batch_pages is None else batch_pages))
    if high_fraction:
        high_min = zone_highsize(managed_pages, low_wmark, batch, nr_cpus, high_fraction)
        return high_min, high_min, batch
    high_min = zone_highsize(managed_pages, low_wmark, batch, nr_cpus, 0)
    high_max = zone_highsize(
        managed_pages, low_wmark, batch, nr_cpus, MIN_PERCPU_PAGELIST_HIGH_FRACTION
    )
    return high_min, high_max, batch
