"""The property suite: the state machine on the kernels that must hold every invariant, on
drawn geometries (``pytest -n auto`` runs these; the settings profile sets their budget); and
the bookkeeping the machine relies on."""

import random
from collections import Counter

import pytest

from pcpfuzz.actions import Run, RunWork, Start
from pcpfuzz.geometry import Geometry
from pcpfuzz.ladder import geometry_for
from pcpfuzz.profiles import get_profile
from pcpfuzz.system import System
from pcpfuzz.trace import execute
from stateful.handles import HandleTable
from stateful.kinds import CHOICES, CPU_ACTIONS, START_OPS, choose, schedule, start_op
from stateful.machine import ARG_CHOICES, machine_for
from stateful.runner import run
from stateful.settings import PROFILES
from strategies import geometries
from strategies.operations import choose_arguments

HOLDING = ("v5.10", "v5.10+p6", "v5.10+p7", "v5.11")
"""v5.10 and v5.11, and the rungs between that change behaviour (p6 moves the drain out of
isolation, p7 disables pcplists in offline); p1-p5 are refactors, checked equal to v5.10 by
``tests/test_ladder_equivalence.py``."""

# Before patch 7, emptying the zone races with allocations (``machine_for``'s keep_populated,
# ``test_emptying_the_zone_loses_pages_until_patch_7``): those kernels keep it populated.
TestV5_10 = machine_for(get_profile("v5.10"), geometries(), keep_populated=True).TestCase
TestV5_10_P6 = machine_for(get_profile("v5.10+p6"), geometries(), keep_populated=True).TestCase
TestV5_10_P7 = machine_for(get_profile("v5.10+p7"), geometries()).TestCase
TestV5_11 = machine_for(get_profile("v5.11"), geometries()).TestCase


def test_every_holding_profile_has_a_test_case() -> None:
    names = {cls.__qualname__.split(".")[0] for cls in (TestV5_10, TestV5_10_P6, TestV5_10_P7)}
    names.add(TestV5_11.__qualname__.split(".")[0])
    assert names == {"Machine_" + "".join(c if c.isalnum() else "_" for c in p) for p in HOLDING}


ZONE_RESET = (
    Start(0, "offline_pages", (0,)),
    Start(1, "alloc_pages", (0, 1)),
    Run(0),
    Start(0, "online_pages", (0,)),
    Run(0),
    Run(1),
)
"""The suite's shrunk find: CPU1's allocation reads batch 3 with IRQs off; CPU0 offlines the
zone's only block (``zone_pcp_reset`` frees the pagesets) and onlines it again; CPU1 refills
the freed pageset."""
ZONE_RESET_GEOMETRY = Geometry(nr_blocks=2, online_blocks=1, fraction=0, sizing_scale=1024)


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.10", "v5.10+p6"])
def test_emptying_the_zone_loses_pages_until_patch_7(profile: str) -> None:
    out = execute(get_profile(profile), ZONE_RESET_GEOMETRY, ZONE_RESET)
    assert (out.invariant, out.at) == ("CONSERVE", len(ZONE_RESET) - 1)


@pytest.mark.parametrize("profile", ["v5.10+p7", "v5.11"])
def test_the_forced_drain_waits_for_the_allocating_cpu(profile: str) -> None:
    s = System(get_profile(profile), ZONE_RESET_GEOMETRY)
    for action in ZONE_RESET[:3]:
        s.apply(action)
    offline = s.cpus[0].task
    assert offline is not None and offline.wait is not None
    assert offline.wait.describe() == "flush_work(pcpu_drain on CPU0,1)"
    assert s.cpus[1].task is not None and s.cpus[1].task.irq_off


def test_handles_follow_blocks_that_offline_migrates() -> None:
    s = System(get_profile("v5.10"), Geometry())
    handles = HandleTable(s)
    fresh = []
    for action in (Start(0, "alloc_pages", (0, 1)), Run(0), Start(0, "alloc_pages", (0, 1))):
        s.apply(action)
        fresh += handles.update()
    assert [h.pfn for h in fresh] == [56, 57]
    s.apply(Start(1, "offline_pages", (3,)))
    while s.cpus[1].task is not None:
        s.apply(RunWork(0) if s.cpus[0].work_pending else Run(1))
        assert handles.update() == []
    assert s.events["page migrated"] == 2
    assert all(handles.live(h) and not 48 <= h.pfn < 64 for h in fresh)
    assert sorted(h.pfn for h in fresh) == s.pool()


def test_a_dead_handle_resolves_to_the_newest_live_block() -> None:
    s = System(get_profile("v5.11"), Geometry())
    handles = HandleTable(s)
    fresh = []
    for action in (Start(0, "alloc_pages", (0, 1)), Run(0), Start(0, "alloc_pages", (0, 1))):
        s.apply(action)
        fresh += handles.update()
    s.apply(Start(1, "alloc_pages", (1, 1)))
    fresh += handles.update()
    s.apply(Start(0, "free_unref_page_list", (56, 57)))
    s.apply(Run(0))
    handles.update()
    dead, _, newest = fresh
    assert not handles.live(dead) and dead.pfn is None
    assert handles.resolve(dead) == newest.pfn


V61_FINDINGS = ("DRAIN-LOCKED", "PCP-OFF", "PCP-HB", "FL-TYPE")
"""What v6.1 as released breaks (docs/v6.1.md): the suite must find one of them."""


def test_the_suite_runs_v6_1_and_finds_a_v6_1_finding() -> None:
    ci = PROFILES["ci"]
    geo = geometry_for("v6.1")
    r = run(get_profile("v6.1"), geo, 0, max_examples=ci.max_examples, steps=25, shrink_limit=0)
    assert r.failure is not None and r.failure.violation.invariant in V61_FINDINGS
    out = execute(get_profile("v6.1"), geo, r.failure.actions)
    assert (out.invariant, out.at) == (r.failure.violation.invariant, r.failure.at)


def test_the_v6_1_machine_chooses_the_v6_only_operations() -> None:
    """The machine's two choices (kind and CPU, then the arguments) on v6.1 states reach the
    higher-order and THP-order pcp allocations and frees and the high-fraction sysctl."""
    v61, geo = get_profile("v6.1"), geometry_for("v6.1")
    rng = random.Random(0)
    started: set[tuple[str, int]] = set()
    events: Counter[str] = Counter()
    for _ in range(40):
        s = System(v61, geo)
        sched = schedule(geo.nr_cpus, None)
        for _ in range(30):
            kind, cpu = choose(rng.randrange(len(CHOICES)), s, sched)
            if kind in START_OPS:
                op = START_OPS[kind] if kind == "free" else start_op(s, kind)
                args = choose_arguments(op, s, rng.randrange(ARG_CHOICES))
                action = Start(cpu, op, args)
                if op == "alloc_pages":
                    started.add((op, args[0]))
                else:
                    started.add((op, -1))
            else:
                action = CPU_ACTIONS[kind](cpu)
            s.apply(action)
        events.update(s.events)
    assert {("alloc_pages", o) for o in (1, 2, 3, geo.pageblock_order)} <= started
    assert ("percpu_pagelist_high_fraction", -1) in started
    assert ("percpu_pagelist_fraction", -1) not in started
    for what in ("higher-order pcp allocation", "THP-order pcp allocation"):
        assert events[what] > 0
    assert events["higher-order pcp free"] + events["THP-order pcp free"] > 0
