"""The trace shrinker: delta debugging, and shrinking real failing traces of the model."""

from __future__ import annotations

import attrs

from pcpfuzz.actions import CpuDown, CpuUp, Run, RunWork, Start, Step
from pcpfuzz.engines.base import Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.ladder import geometry_for
from pcpfuzz.profiles import Profile, get_profile
from pcpfuzz.shrink import _lower_cpus, ddmin, shrink
from pcpfuzz.shrink_oracle import Oracle, trace_key
from pcpfuzz.system import System
from pcpfuzz.trace import execute

NOFIX = get_profile("v5.9-nofix")
GEO = Geometry()
# §15.1 on v5.9-nofix: CPU0's offline isolates block 3 while CPU1's free of pfn 56 sits between
# prepare (cached UNMOVABLE) and commit; the commit puts it on CPU1's pcplist.
RACE = (
    Start(0, "alloc_pages", (0, 0)),
    Step(0),
    Start(0, "offline_pages", (3,)),
    Start(1, "free_pages", (56,)),
    Run(0),
    Step(1),
)
PADDED = (
    CpuDown(1),
    CpuUp(1),
    Start(0, "drain_local_pages", ()),
    Start(1, "percpu_pagelist_fraction", (8,)),
    *RACE[:2],
    Start(1, "alloc_pages", (1, 1)),
    *RACE[2:],
)


def _failure_on(profile: Profile, geometry: Geometry, actions: tuple) -> Failure:
    out = execute(profile, geometry, actions)
    assert out.violation is not None
    return Failure(profile, geometry, actions, out.violation, out.at)


def _failure(actions: tuple) -> Failure:
    return _failure_on(NOFIX, GEO, actions)


def test_ddmin_finds_the_one_minimal_subsequence() -> None:
    needed = (3, 11, 17)

    def fails(c: tuple) -> tuple | None:
        it = iter(c)
        return c if all(any(x == n for x in it) for n in needed) else None

    assert ddmin(tuple(range(20)), fails) == needed


def test_ddmin_keeps_what_the_oracle_returns() -> None:
    # The oracle may hand back a repaired (shorter) sequence: ddmin continues from it.
    def fails(c: tuple) -> tuple | None:
        return tuple(x for x in c if x % 2 == 0) if 4 in c else None

    assert ddmin(tuple(range(10)), fails) == (4,)


def test_padded_race_shrinks_to_the_minimal_trace() -> None:
    padded = _failure(PADDED)
    assert padded.violation.invariant == "ISO-PCP"
    shrunk = shrink(padded)
    assert shrunk.actions == RACE
    assert shrunk.violation.invariant == "ISO-PCP"
    replay = execute(NOFIX, GEO, shrunk.actions)
    assert (replay.invariant, replay.at) == ("ISO-PCP", shrunk.at)


def test_candidates_that_fail_differently_are_rejected() -> None:
    # Without the commit the page stays in flight: offline cannot finish (OFFLINE-TERM at
    # rest), not ISO-PCP. The oracle rejects it and shrinking keeps the invariant.
    assert execute(NOFIX, GEO, RACE[:-1]).invariant == "OFFLINE-TERM"
    oracle = Oracle(_failure(RACE), deadline=None)
    assert oracle.start(RACE)
    assert oracle.fails(oracle.candidate()[:-1]) is None
    assert oracle.best == RACE


def test_shrinking_never_lengthens_and_keeps_a_non_reproducing_failure() -> None:
    f = _failure(PADDED)
    assert trace_key(shrink(f).actions) <= trace_key(f.actions)
    # A failure that does not reproduce (wrong invariant) comes back unchanged.
    bogus = Failure(NOFIX, GEO, RACE, f.violation.__class__("DEADLOCK", "no"), f.at)
    assert shrink(bogus) is bogus


def test_step_runs_become_one_run() -> None:
    # The offline stepped one atomic step (or its own drain work) at a time.
    s = System(NOFIX, GEO)
    stepped = list(RACE[:4])
    for a in stepped:
        s.apply(a)
    for _ in range(30):
        t = s.cpus[0].task
        a = Step(0) if t.runnable(s) else RunWork(0)
        s.apply(a)
        stepped.append(a)
    stepped.append(RACE[-1])
    out = execute(NOFIX, GEO, stepped)
    assert out.invariant == "ISO-PCP"
    shrunk = shrink(Failure(NOFIX, GEO, tuple(stepped), out.violation, out.at))
    assert len(shrunk.actions) == len(RACE)
    assert execute(NOFIX, GEO, shrunk.actions).invariant == "ISO-PCP"


def test_actions_move_to_lower_cpus() -> None:
    # v5.8-online-nopcpupdate: onlining an emptied zone leaves CPUs at the boot pageset.
    profile = get_profile("v5.8-online-nopcpupdate")
    geometry = geometry_for(profile.name)
    on_cpu1 = (
        Start(1, "offline_pages", (0,)),
        Run(1),
        Start(1, "online_pages", (0,)),
        Run(1),
    )
    failure = _failure_on(profile, geometry, on_cpu1)
    assert failure.violation.invariant == "PCP-HB"
    oracle = Oracle(failure, deadline=None)
    assert oracle.start(on_cpu1)
    _lower_cpus(oracle)  # renaming CPU1 to CPU0 changes the best trace mid-pass
    assert oracle.best == tuple(attrs.evolve(a, cpu=0) for a in on_cpu1)
    shrunk = shrink(failure)
    assert {a.cpu for a in shrunk.actions} == {0}
    assert execute(profile, geometry, shrunk.actions).invariant == "PCP-HB"


def test_edit_pairs_reach_a_thirteen_action_trace() -> None:
    # random seed 9 on v5.9-nofix once shrank only to this: no single edit shortens it, but a
    # pair does (pairs are tried on traces of up to PAIRS_UP_TO actions).
    stuck = (
        Start(0, "alloc_pages", (0, 0)),
        Run(0),
        Start(0, "alloc_pages", (1, 2)),
        Start(0, "alloc_pages", (0, 1)),
        Step(0),
        Start(1, "percpu_pagelist_fraction", (12,)),
        Start(0, "offline_pages", (2,)),
        Run(1),
        Run(0),
        Start(0, "free_pages", (24,)),
        Start(1, "offline_pages", (1,)),
        Run(1),
        Run(0),
    )
    out = shrink(_failure(stuck))
    assert len(out.actions) < len(stuck)
    assert out.violation.invariant == "ISO-PCP"
    assert execute(NOFIX, GEO, out.actions).invariant == "ISO-PCP"
