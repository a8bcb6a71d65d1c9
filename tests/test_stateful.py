"""The property suite: the state machine on the kernels that must hold every invariant, on
drawn geometries (``pytest -n auto`` runs these; the settings profile sets their budget); and
the bookkeeping the machine relies on."""

import random
from collections import Counter
from collections.abc import Callable

import pytest

from pcpfuzz.actions import Action, Run, RunWork, Start, Step
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.ladder import geometry_for
from pcpfuzz.liveness import finish
from pcpfuzz.ops import campaign_keeps_populated
from pcpfuzz.profiles import get_profile
from pcpfuzz.system import NotEnabled, System
from pcpfuzz.trace import execute
from stateful.kinds import (
    CHOICES,
    CPU_ACTIONS,
    START_OPS,
    choose,
    interrupts,
    schedule,
    start_op,
)
from stateful.machine import ARG_CHOICES, machine_for
from stateful.runner import run
from stateful.settings import PROFILES
from strategies import geometries
from strategies.operations import choose_arguments

HOLDING = ("v5.10", "v5.10+p6", "v5.10+p7", "v5.11")
"""v5.10 and v5.11, and the rungs between that change behaviour (p6 moves the drain out of
isolation, p7 disables pcplists in offline); p1-p5 are refactors, checked equal to v5.10 by
``tests/test_ladder_equivalence.py``."""

# Emptying the zone under an IRQ-off allocation uses the freed pageset on every 5.x kernel
# (``test_an_allocation_irq_off_across_zone_pcp_reset_uses_the_freed_pageset``): the property
# tests keep the zone populated (``machine_for``'s keep_populated).
TestV5_10 = machine_for(get_profile("v5.10"), geometries(), keep_populated=True).TestCase
TestV5_10_P6 = machine_for(get_profile("v5.10+p6"), geometries(), keep_populated=True).TestCase
TestV5_10_P7 = machine_for(get_profile("v5.10+p7"), geometries(), keep_populated=True).TestCase
TestV5_11 = machine_for(get_profile("v5.11"), geometries(), keep_populated=True).TestCase


def test_every_holding_profile_has_a_test_case() -> None:
    names = {cls.__qualname__.split(".")[0] for cls in (TestV5_10, TestV5_10_P6, TestV5_10_P7)}
    names.add(TestV5_11.__qualname__.split(".")[0])
    assert names == {"Machine_" + "".join(c if c.isalnum() else "_" for c in p) for p in HOLDING}


ZONE_RESET_GEOMETRY = Geometry(nr_blocks=2, online_blocks=1, fraction=0, sizing_scale=1024)
"""One block online of two: offlining block 0 empties the zone (``zone_pcp_reset``)."""
RETRACTED_ZONE_RESET = (
    Start(0, "offline_pages", (0,)),
    Start(1, "alloc_pages", (0, 1)),
    Run(0),
    Start(0, "online_pages", (0,)),
)
"""The suite's old 6-action find (README: retracted): CPU1 goes IRQ-off as the offline starts,
and the whole offline and an online were to run before CPU1's refill."""
FIVE_X = ("v5.9-nofix", "v5.10", "v5.10+p6", "v5.10+p7", "v5.11")


@pytest.mark.parametrize("profile", FIVE_X)
def test_the_retracted_zone_reset_trace_is_one_the_kernel_forbids(profile: str) -> None:
    """The offline waits for CPU1: on MEM_GOING_OFFLINE's ``flush_all`` IPI (5.10 MH 1572), or
    earlier on ``zone_pcp_disable``'s forced drain (``flush_work``, 5.11 PA 3124)."""
    s = System(get_profile(profile), ZONE_RESET_GEOMETRY)
    for action in RETRACTED_ZONE_RESET[:3]:
        s.apply(action)
    offline = s.cpus[0].task
    assert offline is not None and offline.wait is not None
    expected = (
        "flush_work(pcpu_drain on CPU0,1)"
        if get_profile(profile).pcp_disable_in_offline
        else "on_each_cpu_cond(flush_cpu_slab, wait=1), CPU1 IRQ-off"
    )
    assert offline.wait.describe() == expected
    with pytest.raises(NotEnabled, match="CPU0 is running offline_pages"):
        s.apply(RETRACTED_ZONE_RESET[3])


def offline_until(s: System, point: Callable[[System], bool]) -> list[Action]:
    """Start offline of block 0 on CPU0 and advance it (running the drain work it waits for)
    until ``point(s)``; the actions applied."""
    actions: list[Action] = [Start(0, "offline_pages", (0,))]
    s.apply(actions[0])
    while not point(s):
        t = s.cpus[0].task
        assert t is not None, "the offline ended before the point"
        actions.append(Step(0) if t.runnable(s) else RunWork(s.runnable_work()[0]))
        s.apply(actions[-1])
    return actions


def in_the_migrate_loop(s: System) -> bool:
    """Past the offline's last wait for every CPU (MEM_GOING_OFFLINE's ``flush_all``)."""
    t = s.cpus[0].task
    return t is not None and t.loop_iterations > 0


def after_zone_pcp_enable(s: System) -> bool:
    """v5.10+p7/v5.11: ``zone_pcp_enable`` has restored the zone's batch on CPU1."""
    return not s.block_online[0] and not s.pcp_disabled and s.pcp[1].batch > 1


def zone_reset_violations(profile: str, point: Callable[[System], bool], online: bool) -> set:
    """CPU1 starts an order-0 allocation at ``point`` (it reads its batch and yields IRQ-off);
    CPU0 runs the offline to the end (``zone_pcp_reset``), onlines block 0 again if
    ``online``; CPU1 refills. The violations at rest."""
    s = System(get_profile(profile), ZONE_RESET_GEOMETRY)
    offline_until(s, point)
    rest = [Start(1, "alloc_pages", (0, 1)), Run(0)]
    rest += [Start(0, "online_pages", (0,)), Run(0)] if online else []
    for action in (*rest, Run(1)):
        s.apply(action)
    finish(s)
    return {v.invariant for v in check(s, full=True)}


@pytest.mark.parametrize("profile", FIVE_X)
def test_an_allocation_irq_off_across_zone_pcp_reset_uses_the_freed_pageset(profile: str) -> None:
    """No wait of the offline after MEM_GOING_OFFLINE covers CPU1 (docs/fidelity.md, "Zone
    reset"): its refill writes ``pcp->count`` of the pageset ``free_percpu`` freed."""
    assert zone_reset_violations(profile, in_the_migrate_loop, online=False) == {"PCP-UAF"}


@pytest.mark.parametrize(
    ("profile", "point"),
    [
        ("v5.9-nofix", in_the_migrate_loop),
        ("v5.10", in_the_migrate_loop),
        ("v5.10+p6", in_the_migrate_loop),
        ("v5.10+p7", after_zone_pcp_enable),
        ("v5.11", after_zone_pcp_enable),
    ],
)
def test_a_refill_of_the_freed_pageset_after_an_online_loses_pages(
    profile: str, point: Callable[[System], bool]
) -> None:
    """The online frees block 0 to the buddy; CPU1's refill moves a batch of it onto the freed
    pageset (the issue's trace (a) on v5.11 and v5.10+p7)."""
    assert zone_reset_violations(profile, point, online=True) == {"PCP-UAF", "CONSERVE"}


@pytest.mark.parametrize("profile", ["v5.10+p7", "v5.11"])
def test_with_pcplists_disabled_the_refill_takes_one_page_and_hands_it_out(profile: str) -> None:
    """Read while ``zone_pcp_disable`` holds batch 1, the refill takes the one page the
    allocation returns: the use-after-free remains, no page is lost."""
    assert zone_reset_violations(profile, in_the_migrate_loop, online=True) == {"PCP-UAF"}


def pcp_batch_high_lock_released(s: System) -> bool:
    """Block 0 is offline and nothing holds ``pcp_batch_high_lock`` (v5.11: after enable)."""
    return not s.block_online[0] and s.pcp_batch_high_lock.owner is None


@pytest.mark.parametrize("profile", FIVE_X)
def test_the_fraction_sysctl_across_zone_pcp_reset_writes_the_freed_pageset(profile: str) -> None:
    """5.10 PA 10118: the handler holds only ``pcp_batch_high_lock``, which ``zone_pcp_reset``
    does not take; emptied between its ``pageset_update`` stores, CPU0's pageset is freed."""
    s = System(get_profile(profile), ZONE_RESET_GEOMETRY, tracing=True)
    offline_until(s, pcp_batch_high_lock_released)
    s.apply(Start(1, "percpu_pagelist_fraction", (8,)))
    while not any(cpu == 1 and "pageset_update(CPU0)" in line for _, cpu, line in s.log):
        s.apply(Step(1))
    for action in (Run(0), Run(1)):
        s.apply(action)
    assert s.zone.present_pages == 0
    assert [v.message for v in check(s, full=True)][0] == (
        "CPU1 percpu_pagelist_fraction: pageset_update writes high to a pageset zone_pcp_reset "
        "freed (use-after-free)"
    )


def test_campaigns_on_the_5x_kernels_keep_the_zone_populated() -> None:
    """Fuzz campaigns never offline the zone's last block (PCP-UAF above would mask the rest),
    except where the bug needs the empty zone; the model's own action space still can."""
    assert campaign_keeps_populated(get_profile("v5.11"))
    assert not campaign_keeps_populated(get_profile("v5.8-online-nopcpupdate"))
    kept = System(get_profile("v5.11"), ZONE_RESET_GEOMETRY, keep_populated=True)
    free = System(get_profile("v5.11"), ZONE_RESET_GEOMETRY)
    assert Start(0, "offline_pages", (0,)) not in kept.enabled()
    assert Start(0, "offline_pages", (0,)) in free.enabled()


V61_FINDINGS = ("DRAIN-LOCKED", "PCP-OFF", "PCP-HB", "FL-TYPE", "PCP-UAF")
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
            elif kind == "irq":
                able = interrupts(s, cpu)
                action = able[rng.randrange(ARG_CHOICES) % len(able)]
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
