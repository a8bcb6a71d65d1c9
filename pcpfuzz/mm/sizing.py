"""pcp high/batch sizing: the pure formulas of mm/page_alloc.c (spec §8.1, §8.2).

These functions hold no state; the per-CPU writes that apply them live in ``pcpfuzz.mm.pageset``.
"""

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
MIN_PERCPU_PAGELIST_FRACTION = 8
BOOT_PAGESET_HIGH = 0
BOOT_PAGESET_BATCH = 1


def rounddown_pow_of_two(n: int) -> int:
    """The largest power of two not above ``n`` (``n`` >= 1)."""
    return 1 << (n.bit_length() - 1)


def zone_batchsize(managed_pages: int) -> int:
    """``zone_batchsize()`` (CONFIG_MMU), spec §8.1: about 1/1000 of the zone, capped, 2^n - 1."""
    batch = managed_pages // 1024
    if batch * PAGE_SIZE > 1024 * 1024:
        batch = (1024 * 1024) // PAGE_SIZE
    batch //= 4
    if batch < 1:
        batch = 1
    return rounddown_pow_of_two(batch + batch // 2) - 1


def pageset_high_batch(managed_pages: int, fraction: int) -> tuple[int, int]:
    """The (high, batch) of spec §8.2 for ``managed_pages`` and the sysctl ``fraction``.

    Default mode (fraction 0): ``high = 6 * zone_batchsize``, ``batch = max(1, zone_batchsize)``.
    Fraction mode: ``high = managed / fraction``, ``batch = max(1, high / 4)`` capped at
    ``PAGE_SHIFT * 8``.
    """
    if fraction:
        high = managed_pages // fraction
        batch = max(1, high // 4)
        if high // 4 > PAGE_SHIFT * 8:
            batch = PAGE_SHIFT * 8
        return high, batch
    batch = zone_batchsize(managed_pages)
    return 6 * batch, max(1, batch)


MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8


def zone_highsize(
    managed_pages: int, low_wmark: int, batch: int, nr_split_cpus: int, high_fraction: int
) -> int:
    """``zone_highsize()`` of ``mm/page_alloc.c`` from v5.14 (v6.1, v6.12; not a v5.10/v5.11 rule).

    The pages to split are the zone's low watermark, or ``managed / high_fraction`` when the sysctl
    ``vm.percpu_pagelist_high_fraction`` is set. They are split across ``nr_split_cpus``: the
    online CPUs of the zone's node, plus 1 inside the CPU-online callback (whose CPU is not yet in
    the mask). The result is at least ``4 * batch``.
    """
    total_pages = managed_pages // high_fraction if high_fraction else low_wmark
    return max(total_pages // nr_split_cpus, batch << 2)
