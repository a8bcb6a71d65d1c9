"""pcp high/batch sizing (spec §8.1, §8.2) at real scale, and the fraction sysctl handler."""

import pytest
from helpers import finish_task, holds, kernel_task, lines, make, run_gen

from pcpfuzz.actions import Start
from pcpfuzz.constants import EINVAL
from pcpfuzz.mm.pageset import percpu_pagelist_fraction_sysctl_handler
from pcpfuzz.mm.sizing import pageset_high_batch, zone_batchsize

# Spec §8.1's table, 4 KiB pages: (first managed count, last managed count, zone_batchsize).
BATCHSIZE_ROWS = [
    (0, 8191, 0),
    (8192, 12287, 1),
    (12288, 24575, 3),
    (24576, 45055, 7),
    (45056, 90111, 15),
    (90112, 176127, 31),
    (176128, 1 << 30, 63),
]


@pytest.mark.parametrize(("first", "last", "batchsize"), BATCHSIZE_ROWS)
def test_zone_batchsize_table(first: int, last: int, batchsize: int) -> None:
    assert zone_batchsize(first) == batchsize
    assert zone_batchsize(last) == batchsize
    if first:
        assert zone_batchsize(first - 1) != batchsize
    # Default mode: high 6x, batch at least 1 (the "< 8192" row is high 0, batch 1).
    assert pageset_high_batch(last, 0) == (6 * batchsize, max(1, batchsize))


def test_zone_batchsize_one_mib_cap() -> None:
    # managed/1024 = 256 is exactly 1 MiB (not capped); above it the cap holds it at 256 -> 63.
    assert zone_batchsize(256 * 1024) == 63
    assert zone_batchsize(257 * 1024) == 63
    assert zone_batchsize(1 << 40) == 63


# Spec §8.2 fraction mode: high = managed / f, batch = max(1, high / 4), 96 when high / 4 > 96.
FRACTION_ROWS = [
    (64, 8, 8, 2),  # the spec's example: the default geometry
    (24, 8, 3, 1),  # high / 4 == 0: batch 1
    (64, 16, 4, 1),
    (3072, 8, 384, 96),  # high / 4 == 96: not capped, exactly 96
    (3104, 8, 388, 96),  # high / 4 == 97: capped to PAGE_SHIFT * 8
    (1 << 20, 8, 131072, 96),
    (1 << 20, 1000, 1048, 96),
    (7, 8, 0, 1),
]


@pytest.mark.parametrize(("managed", "fraction", "high", "batch"), FRACTION_ROWS)
def test_fraction_rule(managed: int, fraction: int, high: int, batch: int) -> None:
    assert pageset_high_batch(managed, fraction) == (high, batch)


@pytest.mark.parametrize(("first", "last", "batchsize"), BATCHSIZE_ROWS)
def test_boot_pagesets_at_real_scale(first: int, last: int, batchsize: int) -> None:
    # The 64-page zone with sizing_scale k sizes itself as a zone of 64k managed pages.
    s = make("v5.10", fraction=0, sizing_scale=max(1, first // 64))
    assert first <= s.zone.managed_pages * s.geo.sizing_scale <= last
    want = (6 * batchsize, max(1, batchsize))
    assert [(p.high, p.batch) for p in s.pcp] == [want, want]


@pytest.mark.parametrize("value", [-1, 1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("profile", ["v5.10", "v5.11"])
def test_sysctl_rejects_small_fractions(profile: str, value: int) -> None:
    s = make(profile)
    before = [(p.high, p.batch) for p in s.pcp]
    ret = run_gen(percpu_pagelist_fraction_sysctl_handler(s, kernel_task(1), value))
    assert ret == EINVAL
    assert s.fraction == 8
    assert [(p.high, p.batch) for p in s.pcp] == before
    assert s.pcp_batch_high_lock.owner is None


@pytest.mark.parametrize("profile", ["v5.10", "v5.11"])
def test_sysctl_unchanged_value_writes_nothing(profile: str) -> None:
    s = make(profile)
    since = len(s.log)
    assert run_gen(percpu_pagelist_fraction_sysctl_handler(s, kernel_task(1), 8)) == 0
    assert not any(line.startswith("pageset_update") for line in lines(s, since))


@pytest.mark.parametrize("profile", ["v5.10", "v5.10+p2", "v5.11"])
@pytest.mark.parametrize(("value", "want"), [(16, (4, 1)), (12, (5, 1)), (0, (0, 1))])
def test_sysctl_recomputes_every_cpu(profile: str, value: int, want: tuple[int, int]) -> None:
    s = make(profile, nr_cpus=3)
    assert run_gen(percpu_pagelist_fraction_sysctl_handler(s, kernel_task(1), value)) == 0
    assert s.fraction == value
    assert [(p.high, p.batch) for p in s.pcp] == [want] * 3
    assert s.pcp_batch_high_lock.owner is None


def test_sysctl_on_an_unpopulated_zone_only_stores_the_value() -> None:
    s = make("v5.10", online_blocks=0)
    assert run_gen(percpu_pagelist_fraction_sysctl_handler(s, kernel_task(1), 16)) == 0
    assert s.fraction == 16
    assert [(p.high, p.batch) for p in s.pcp] == [(0, 1), (0, 1)]


def _cpu0_states(profile: str) -> list[tuple[int, int]]:
    """CPU0's (high, batch) after each step of the sysctl going from fraction 8 to 16 on a zone
    sized as 4096 pages: (512, 96) -> (256, 64)."""
    s = make(profile, sizing_scale=64)
    gen = percpu_pagelist_fraction_sysctl_handler(s, kernel_task(1), 16)
    states = [(s.pcp[0].high, s.pcp[0].batch)]
    for _ in gen:
        if (s.pcp[0].high, s.pcp[0].batch) != states[-1]:
            states.append((s.pcp[0].high, s.pcp[0].batch))
    return states


def test_pageset_update_failsafe_order_v5_10() -> None:
    # v5.10 (§8.3): batch := 1, high := h, batch := b, each its own step.
    assert _cpu0_states("v5.10") == [(512, 96), (512, 1), (256, 1), (256, 64)]


def test_pageset_update_write_once_order_after_patch_4() -> None:
    # Patch 4 (§8.4): WRITE_ONCE(batch) then WRITE_ONCE(high): batch > high can be seen.
    assert _cpu0_states("v5.10+p4") == [(512, 96), (512, 64), (256, 64)]
    assert _cpu0_states("v5.11") == [(512, 96), (512, 64), (256, 64)]


@pytest.mark.parametrize(("profile", "writes"), [("v5.10+p4", 2), ("v5.10+p5", 0)])
def test_cached_pair_skips_unchanged_updates(profile: str, writes: int) -> None:
    # Fractions 15 and 16 give the same pair (4, 1) on 64 pages: patch 5 returns early.
    s = make(profile, fraction=15)
    since = len(s.log)
    assert run_gen(percpu_pagelist_fraction_sysctl_handler(s, kernel_task(1), 16)) == 0
    assert sum(line.startswith("pageset_update") for line in lines(s, since)) == writes
    assert [(p.high, p.batch) for p in s.pcp] == [(4, 1), (4, 1)]


def test_sysctl_op_through_apply() -> None:
    s = make("v5.11")
    s.apply(Start(0, "percpu_pagelist_fraction", (7,)))
    assert s.cpus[0].task is None
    assert s.returned[0] == ("percpu_pagelist_fraction", EINVAL)
    s.apply(Start(0, "percpu_pagelist_fraction", (16,)))
    assert finish_task(s, 0) == 0
    assert [(p.high, p.batch) for p in s.pcp] == [(4, 1), (4, 1)]
    holds(s)
