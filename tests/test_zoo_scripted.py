"""The bug zoo, one exact interleaving each: the action list that shows the bug on its zoo
profile (invariant and action index, through ``pcpfuzz.trace.execute`` as the corpus replays
it), and what the same actions do on the version with the fix."""

from __future__ import annotations

import pytest

from pcpfuzz.actions import Action, Run, RunWork, Signal, Start, Step
from pcpfuzz.constants import MT
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.ladder import geometry_for
from pcpfuzz.liveness import finish
from pcpfuzz.profiles import get_profile
from pcpfuzz.system import NotEnabled, System
from pcpfuzz.trace import execute

MOVABLE = int(MT.MOVABLE)
UNMOVABLE = int(MT.UNMOVABLE)


def run_on(name: str, actions: list[Action], geometry: Geometry) -> System:
    """Apply ``actions`` to a fresh traced system of profile ``name``."""
    s = System(get_profile(name), geometry, tracing=True)
    for a in actions:
        s.apply(a)
    return s


def outcome(
    name: str, actions: list[Action], geometry: Geometry
) -> tuple[str | None, int | None, str]:
    """(invariant, action index, message) of ``execute`` on profile ``name``."""
    out = execute(get_profile(name), geometry, actions)
    v = out.violation
    return (None, None, "") if v is None else (v.invariant, out.at, v.message)


# ---- v5.8-nobulkclamp: 88e8ac11d2ea ------------------------------------------------------------

# Fraction 0 on 64 pages: high 0, batch 1. CPU0 frees pfn 56: the commit pushes it (count 1 >=
# high 0) and, still with IRQs off, has yet to read batch. CPU1's sysctl raises fraction to 8:
# CPU0's pageset becomes high 8, batch 2 (three writes in v5.10). CPU0 reads batch 2.
NOBULKCLAMP_GEOMETRY = Geometry(fraction=0)
NOBULKCLAMP = [
    Start(0, "alloc_pages", (0, MOVABLE)),
    Step(0),  # refill 1 page, pfn 56
    Start(0, "free_pages", (56,)),  # prepare: cached MOVABLE
    Step(0),  # commit: push, count 1 >= high 0; batch not read yet
    Start(1, "percpu_pagelist_fraction", (8,)),
    Step(1),  # CPU0 batch := 1
    Step(1),  # CPU0 high := 8
    Step(1),  # CPU0 batch := 2
    Step(0),  # free_pcppages_bulk(batch 2) with one page on the lists
]


@pytest.mark.parametrize("geometry", [NOBULKCLAMP_GEOMETRY, geometry_for("v5.8-nobulkclamp")])
def test_nobulkclamp_geometries_start_at_high_0_batch_1(geometry: Geometry) -> None:
    s = run_on("v5.8-nobulkclamp", [], geometry)
    assert [(p.high, p.batch) for p in s.pcp] == [(0, 1), (0, 1)]


def test_nobulkclamp_a_free_that_reads_the_raised_batch_hangs() -> None:
    s = run_on("v5.8-nobulkclamp", NOBULKCLAMP[:-1], NOBULKCLAMP_GEOMETRY)
    assert (s.pcp[0].high, s.pcp[0].batch, s.pcp[0].count) == (8, 2, 1)
    assert s.cpus[0].task.irq_off
    invariant, at, message = outcome("v5.8-nobulkclamp", NOBULKCLAMP, NOBULKCLAMP_GEOMETRY)
    assert (invariant, at) == ("HANG", len(NOBULKCLAMP) - 1)
    assert "free_pcppages_bulk on CPU0 searches its empty pcplists forever" in message


def test_nobulkclamp_the_clamp_frees_the_one_page() -> None:
    s = run_on("v5.10", NOBULKCLAMP, NOBULKCLAMP_GEOMETRY)
    assert "free_pcppages_bulk(pcp0): pfns [56] to the buddy" in [t for _i, _c, t in s.log]
    assert s.pcp[0].count == 0 and check(s) == []
    assert outcome("v5.10", NOBULKCLAMP, NOBULKCLAMP_GEOMETRY) == (None, None, "")


def test_nobulkclamp_as_reported_onlining_a_second_block_raises_batch() -> None:
    # 88e8ac11d2ea's report: the zone still has its first-block values (0, 1) when a free
    # reads high 0; onlining another block runs zone_pcp_update, (18, 3) here; the free then
    # asks free_pcppages_bulk for 3 pages with one on the lists.
    geometry = geometry_for("v5.8-nobulkclamp")
    # The online starts first: its mem_hotplug_begin waits in synchronize_rcu for a CPU that
    # is IRQ-off, so the free's IRQ-off section must begin after it (issue 11).
    actions = [
        Start(0, "alloc_pages", (0, MOVABLE)),
        Step(0),  # pfn 8
        Start(1, "online_pages", (1,)),
        Start(0, "free_pages", (8,)),
        Step(0),  # push, count 1 >= high 0
        Run(1),  # zone_pcp_update: (18, 3) on both CPUs
        Step(0),
    ]
    invariant, at, message = outcome("v5.8-nobulkclamp", actions, geometry)
    assert (invariant, at) == ("HANG", len(actions) - 1)
    assert "2 more pages to free, pcp count 0" in message
    assert outcome("v5.10", actions, geometry) == (None, None, "")


# ---- v5.8-online-nopcpupdate: de1193f0be66 ----------------------------------------------------

# One block online of two. Offlining it empties the zone (zone_pcp_reset); onlining block 1
# populates it again: setup_zone_pageset computes high/batch for 0 managed pages (0, 1), and
# without de1193f0be66 nothing recomputes them once the 16 pages are managed.
ONLINE_GEOMETRY = geometry_for("v5.8-online-nopcpupdate")
ONLINE_FIRST_BLOCK = [
    Start(0, "offline_pages", (0,)),
    Run(0),
    Start(0, "online_pages", (1,)),
    Run(0),
]


def test_online_nopcpupdate_the_first_block_keeps_the_values_for_an_empty_zone() -> None:
    invariant, at, message = outcome("v5.8-online-nopcpupdate", ONLINE_FIRST_BLOCK, ONLINE_GEOMETRY)
    assert (invariant, at) == ("PCP-HB", len(ONLINE_FIRST_BLOCK) - 1)
    assert message.startswith("CPU0 has high 0 batch 1, but managed 16 and fraction 8")
    assert message.endswith("give high 2 batch 1")


def test_online_nopcpupdate_a_second_block_still_updates() -> None:
    # The bug is only the first block: onlining into a populated zone calls zone_pcp_update.
    actions = [Start(0, "online_pages", (1,)), Run(0)]
    s = run_on("v5.8-online-nopcpupdate", actions, ONLINE_GEOMETRY)
    assert [(p.high, p.batch) for p in s.pcp] == [(4, 1), (4, 1)]
    assert check(s) == []


def test_online_nopcpupdate_is_fixed_in_v5_10() -> None:
    s = run_on("v5.10", ONLINE_FIRST_BLOCK, ONLINE_GEOMETRY)
    assert [(p.high, p.batch) for p in s.pcp] == [(2, 1), (2, 1)]
    assert outcome("v5.10", ONLINE_FIRST_BLOCK, ONLINE_GEOMETRY) == (None, None, "")


# ---- v5.11-unforced-disable: the forced drain of ec6e8c7e0314 -----------------------------------

# CPU0 allocates with an empty MOVABLE list: it reads batch 2 and, IRQs off, has yet to refill.
# CPU1 offlines block 3: zone_pcp_disable writes (0, 1) on both CPUs, then reads CPU0's count
# (0) and skips it. CPU0 refills 2 pages with the old batch, hands out pfn 56 and keeps 57.
TWO_CPUS = Geometry()  # the scripted race needs no third CPU (the fuzzers' geometry has one)
UNFORCED = [
    Start(1, "offline_pages", (3,)),  # first: mem_hotplug_begin waits for an IRQ-off CPU
    Start(0, "alloc_pages", (0, MOVABLE)),
    Step(1),  # zone_pcp_disable: lock; CPU0 batch := 1
    Step(1),  # CPU0 high := 0
    Step(1),  # CPU1 batch := 1
    Step(1),  # CPU1 high := 0
    Step(1),  # __drain_all_pages takes pcpu_drain_mutex
    Step(1),  # reads CPU0's count: 0, skipped (forced: posts work to every CPU and waits)
    Step(1),  # reads CPU1's count: 0, skipped
    Step(1),  # posts no work, returns: pcplists disabled
    Step(0),  # refill with batch 2: pfn 56 out, pfn 57 stays on CPU0's list
]


def test_unforced_disable_keeps_a_refilled_page_on_a_disabled_pcplist() -> None:
    s = run_on("v5.11-unforced-disable", UNFORCED, TWO_CPUS)
    assert s.pcp_disabled and s.pcp[0].lists[MOVABLE] == [57]
    found = check(s)
    assert [v.invariant for v in found] == ["PCP-OFF"]
    assert "CPU0's pcplist holds 1 page(s) [57] with IRQs on" in found[0].message
    at_rest = finish(s)
    assert [v.invariant for v in at_rest] == ["OFFLINE-TERM"]
    assert "pfn 57 on CPU0's MOVABLE pcplist" in at_rest[0].message


def test_forced_disable_waits_for_the_allocation_and_drains_it() -> None:
    # The forced drain posts work to both CPUs without reading counts and waits: the same
    # script's next Step(1) is not enabled until CPU0 leaves its IRQ-off section.
    with pytest.raises(NotEnabled, match="action 8: CPU1 step: CPU1's offline_pages is blocked"):
        execute(get_profile("v5.11"), TWO_CPUS, UNFORCED)
    s = run_on("v5.11", UNFORCED[:8], TWO_CPUS)
    assert s.cpus[0].work_pending and not s.pcp_disabled
    rest = [Step(0), RunWork(0), RunWork(1), Run(1)]
    for a in rest:
        s.apply(a)
        assert check(s) == []
    assert s.pcp[0].count == 0 and s.cpus[1].task is None
    assert execute(get_profile("v5.11"), TWO_CPUS, UNFORCED[:8] + rest).passed


# ---- v5.11-noenable-onfail: zone_pcp_enable on offline's failure paths -------------------------

SIGNALLED = [
    Start(1, "offline_pages", (3,)),
    Signal(1),
    Run(1),  # disable, isolate; the loop sees the signal: EINTR, undo isolation
    RunWork(0),  # the forced drain's work on CPU0
    Run(1),
]
ISOLATION_FAILS = [
    Start(0, "alloc_pages", (0, UNMOVABLE)),
    Step(0),  # an unmovable page in block 3: isolation fails with EBUSY
    Start(1, "offline_pages", (3,)),
    Run(1),
    RunWork(0),
    Run(1),
]


@pytest.mark.parametrize(
    ("actions", "ret"), [(SIGNALLED, -4), (ISOLATION_FAILS, -16)], ids=["signal", "isolation"]
)
def test_noenable_onfail_returns_holding_pcp_batch_high_lock(
    actions: list[Action], ret: int
) -> None:
    invariant, at, message = outcome("v5.11-noenable-onfail", actions, TWO_CPUS)
    assert (invariant, at) == ("LOCK-ORDER", len(actions) - 1)
    assert message == f"CPU1 offline_pages returned {ret} holding pcp_batch_high_lock"
    s = run_on("v5.11-noenable-onfail", actions, TWO_CPUS)
    assert [(p.high, p.batch) for p in s.pcp] == [(0, 1), (0, 1)]  # still disabled


def test_noenable_onfail_then_the_next_updater_deadlocks() -> None:
    actions = SIGNALLED + [Start(0, "percpu_pagelist_fraction", (16,))]
    s = run_on("v5.11-noenable-onfail", actions, TWO_CPUS)
    assert s.cpus[0].task.wait.describe() == "mutex_lock(pcp_batch_high_lock)"
    assert [v.invariant for v in finish(s)] == ["DEADLOCK"]


@pytest.mark.parametrize("actions", [SIGNALLED, ISOLATION_FAILS], ids=["signal", "isolation"])
def test_v5_11_enables_pcplists_on_both_failure_paths(actions: list[Action]) -> None:
    s = run_on("v5.11", actions, TWO_CPUS)
    assert s.pcp_batch_high_lock.owner is None
    assert [(p.high, p.batch) for p in s.pcp] == [(8, 2), (8, 2)]
    assert execute(get_profile("v5.11"), TWO_CPUS, actions).passed
