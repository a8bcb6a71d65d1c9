"""The v6.12 profile (modern-kernels.md (e)). Sizing values are hand-computed from 6.12.0's
``zone_batchsize``, ``zone_highsize``, ``zone_set_pageset_high_and_batch`` and
``__setup_per_zone_wmarks`` (mm/page_alloc.c)."""

import pytest

from pcpfuzz.mm612.sizing import clamp, pcp_high_min_max_batch, zone_batchsize, zone_watermarks


def test_zone_batchsize_at_kernel_scale() -> None:
    # min(managed >> 10, 256) / 4, then rounddown_pow_of_two(b + b/2) - 1, as 6.12 computes it
    assert zone_batchsize(4096) == 0  # 4 / 4 = 1 -> rdp2(1) - 1
    assert zone_batchsize(8192) == 1  # 8 / 4 = 2 -> rdp2(3) - 1
    assert zone_batchsize(176128) == 63  # 172 / 4 = 43 -> rdp2(64) - 1
    assert zone_batchsize(1_000_000) == 63  # min(976, 256) / 4 = 64 -> rdp2(96) - 1


def test_watermarks_of_the_only_lowmem_zone() -> None:
    # min = pages_min; delta = max(min >> 2, managed * 10 / 10000); low = min + delta
    assert zone_watermarks(64, 8, 64) == (8, 10, 12)
    assert zone_watermarks(1_000_000, 16384, 1_000_000) == (16384, 20480, 24576)
    assert zone_watermarks(4_000_000, 1000, 4_000_000) == (1000, 5000, 9000)  # scale term wins


def test_high_min_max_batch_at_kernel_scale() -> None:
    # batch 63; high_min = max(20480 / 4, 63 << 2); high_max = max(1e6 / 8 / 4, 252)
    assert pcp_high_min_max_batch(1_000_000, 20480, 4, 0) == (5120, 31250, 63)
    # fraction mode: high_min = high_max = max(1e6 / 100 / 4, 252)
    assert pcp_high_min_max_batch(1_000_000, 20480, 4, 100) == (2500, 2500, 63)
    # the CPU-online callback counts the coming CPU: 5 CPUs
    assert pcp_high_min_max_batch(1_000_000, 20480, 5, 0) == (4096, 25000, 63)


def test_high_min_max_batch_at_model_scale() -> None:
    # the spec's §5.6 table: batch 1 below 8192 pages, floor batch << 2 = 4
    assert pcp_high_min_max_batch(64, 2, 2, 0) == (4, 4, 1)
    assert pcp_high_min_max_batch(64, 10, 2, 0) == (5, 4, 1)  # high_min > high_max
    assert pcp_high_min_max_batch(256, 10, 2, 0) == (5, 16, 1)
    assert pcp_high_min_max_batch(256, 10, 2, 8) == (16, 16, 1)
    with pytest.raises(ValueError, match="nr_cpus"):
        pcp_high_min_max_batch(256, 10, 0, 0)


def test_clamp_is_the_6_12_form() -> None:
    assert clamp(3, 1, 5) == 3 and clamp(0, 1, 5) == 1 and clamp(9, 1, 5) == 5
    # lo > hi: hi when val >= hi, else lo (6.1's min(max()) would give hi)
    assert clamp(5, 5, 4) == 4 and clamp(3, 5, 4) == 5
