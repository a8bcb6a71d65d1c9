"""Memory online/offline and CPU hotplug (spec §7.4, §10, §11): sizes, the zone emptying and
refilling its pagesets, the signal path of offline, and the dead CPU's drain."""

import pytest
from helpers import finish_task, free_blocks, holds, lines, make, step_until

from pcpfuzz.actions import CpuDown, CpuUp, Signal, Start, Step
from pcpfuzz.constants import EINTR, MT
from pcpfuzz.invariants import check
from pcpfuzz.liveness import finish
from pcpfuzz.system import System

VERSIONS = ["v5.9-nofix", "v5.10", "v5.11"]


def hotplug(s: System, op: str, block: int) -> int | None:
    s.apply(Start(0, op, (block,)))
    return finish_task(s, 0, checked=True)


def cpu0_states(s: System, op: str, block: int) -> list[tuple[int, int]]:
    """CPU0's distinct (high, batch) values while CPU1 runs ``op`` on ``block``."""
    seen = [(s.pcp[0].high, s.pcp[0].batch)]
    s.apply(Start(1, op, (block,)))
    while s.cpus[1].task is not None:
        s.apply(Step(1))
        if (s.pcp[0].high, s.pcp[0].batch) != seen[-1]:
            seen.append((s.pcp[0].high, s.pcp[0].batch))
    return seen


@pytest.mark.parametrize("profile", VERSIONS)
def test_offline_and_online_move_managed_and_present_by_one_block(profile: str) -> None:
    s = make(profile)
    assert hotplug(s, "offline_pages", 2) == 0
    assert (s.zone.managed_pages, s.zone.present_pages) == (48, 48)
    assert not s.block_online[2] and not any(s.page_present[32:48])
    assert s.zone.nr_free_pages == 48 and s.zone.nr_isolate_pageblock == 0
    assert [(p.high, p.batch) for p in s.pcp] == [(6, 1), (6, 1)]  # zone_pcp_update: 48 / 8
    assert hotplug(s, "online_pages", 2) == 0
    assert (s.zone.managed_pages, s.zone.present_pages) == (64, 64)
    assert s.zone.nr_free_pages == 64 and s.pageblock_mt[8:12] == [MT.MOVABLE] * 4
    assert [(p.high, p.batch) for p in s.pcp] == [(8, 2), (8, 2)]
    assert finish(s) == [] and check(s) == []


@pytest.mark.parametrize(
    ("profile", "refill"),
    [("v5.10", [(0, 1), (0, 0), (0, 1), (2, 1)]), ("v5.11", [(0, 1), (2, 1)])],
)
def test_the_zone_empties_to_the_boot_pageset_and_refills(
    profile: str, refill: list[tuple[int, int]]
) -> None:
    s = make(profile)
    for block in range(4):
        assert hotplug(s, "offline_pages", block) == 0
    assert s.zone.pageset_is_boot and (s.zone.managed_pages, s.zone.present_pages) == (0, 0)
    assert [(p.high, p.batch) for p in s.pcp] == [(0, 1), (0, 1)]
    if profile == "v5.11":  # zone_pcp_reset keeps the cached pair of 16 pages (spec §8.5)
        assert (s.zone.pageset_high, s.zone.pageset_batch) == (2, 1)
    # v5.10: setup_zone_pageset zeroes the pageset (batch 0) before pageset_set_high_and_batch;
    # v5.11: pageset_init already holds (0, 1). Then zone_pcp_update sizes 16 pages.
    assert cpu0_states(s, "online_pages", 1) == refill
    assert not s.zone.pageset_is_boot and s.zone.managed_pages == 16
    assert finish(s) == [] and check(s) == []


@pytest.mark.parametrize("profile", VERSIONS)
def test_a_signal_aborts_offline_and_undoes_it(profile: str) -> None:
    s = make(profile)
    s.apply(Start(1, "offline_pages", (3,)))
    s.apply(Signal(1))
    assert finish_task(s, 1, checked=True) == EINTR
    assert s.events["offline aborted by a signal"] == 1
    assert s.pageblock_mt[12:16] == [MT.MOVABLE] * 4 and s.zone.nr_isolate_pageblock == 0
    assert s.zone.nr_free_pages == 64 and s.block_online[3]
    assert [(p.high, p.batch) for p in s.pcp] == [(8, 2), (8, 2)]
    assert all(m.owner is None for m in s.mutexes)
    enabled = "zone_pcp_enable: high 8, batch 2" in lines(s)
    assert enabled == (profile == "v5.11")
    assert finish(s) == []


def test_without_enable_on_the_failure_path_the_lock_is_leaked() -> None:
    s = make("v5.11-noenable-onfail")
    s.apply(Start(1, "offline_pages", (3,)))
    s.apply(Signal(1))
    assert finish_task(s, 1) == EINTR
    found = check(s)
    assert [v.invariant for v in found][:1] == ["LOCK-ORDER"]
    assert "offline_pages returned -4 holding pcp_batch_high_lock" in str(found[0])


@pytest.mark.parametrize(("profile", "isolated"), [("v5.9-nofix", False), ("v5.10", True)])
def test_onlining_goes_through_isolate_from_v5_10(profile: str, isolated: bool) -> None:
    s = make(profile, online_blocks=3)
    s.apply(Start(0, "online_pages", (3,)))
    step_until(s, 0, lambda x: x.block_online[3], checked=True)  # pages freed, not yet undone
    assert ((48, 3, "ISOLATE") in free_blocks(s)) == isolated
    assert s.zone.nr_isolate_pageblock == (4 if isolated else 0)
    assert s.zone.nr_free_pages == (48 if isolated else 64)
    finish_task(s, 0, checked=True)
    assert (48, 3, "MOVABLE") in free_blocks(s) and s.zone.nr_free_pages == 64


@pytest.mark.parametrize("profile", VERSIONS)
def test_cpu_down_drains_the_dead_cpu(profile: str) -> None:
    s = make(profile)
    s.apply(Start(1, "alloc_pages", (0, MT.MOVABLE)))
    s.apply(Step(1))
    assert s.pcp[1].count == 1
    s.apply(CpuDown(1))
    assert s.pcp[1].count == 0 and s.zone.nr_free_pages == 63
    assert "CPU1 offline: page_alloc_cpu_dead drained it" in lines(s)
    holds(s)
    assert not any(a.cpu == 1 and isinstance(a, Start) for a in s.enabled())
    assert CpuDown(0) not in s.enabled()  # the last online CPU stays
    s.apply(Start(0, "drain_all_pages", (1,)))
    finish_task(s, 0)
    assert "drain_all_pages: drain work posted to CPUs []" in lines(s)
    s.apply(CpuUp(1))
    assert Start(1, "drain_local_pages", ()) in s.enabled()
    holds(s)


def test_no_cpu_hotplug_during_memory_hotplug() -> None:
    s = make("v5.10")
    s.apply(Start(0, "offline_pages", (3,)))
    assert s.mem_hotplug_lock.owner is not None
    assert CpuDown(1) not in s.enabled()
    assert s.why_not(CpuDown(1)) == "memory hotplug holds cpus_read_lock"
