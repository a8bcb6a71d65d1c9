"""Patches 1-5 claim "no functional change": each rung, run with the same actions as its
predecessor, must show a kernel user the same thing, except where the spec (§8.4) documents a
difference.

How two runs whose atomic-step counts differ are compared: a pageset high/batch update loop
(``zone_set_pageset_high_and_batch``, ``__zone_set_pageset_high_and_batch``, ``pageset_update``)
runs as one step. Patch 4 (two writes per CPU instead of three) and patch 5 (no writes when the
pair is unchanged) change only the inside of that loop, so the rest of both runs lines up
action for action, and everything else is compared after every action: what each allocation
returned, the freelists in order, the pcplists and counts, the counters, the pageblock types,
the tasks and locks, the invariants, and every CPU's (high, batch). Each documented difference
is then one rule, and is also shown on its own by a scripted test below:

* patch 3: a pageset fresh from ``pageset_init`` has batch 0 before the patch, 1 after;
* patch 4: inside an update, a reader sees (old high, new batch), possibly batch > high;
* patch 5: an unchanged pair is not written (fewer steps, same state).

Patch 2 also changes something the spec does not document: before it, each CPU's pair was
computed from ``managed_pages`` at that CPU's turn, and the sysctl (which holds only
``pcp_batch_high_lock``) can race with onlining (which holds only ``mem_hotplug_lock``) and see
``managed_pages`` grow between CPUs. The update loop runs as one step here, so the property
cannot reach it; ``test_p2_...`` shows it step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers import PURE_ONLY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcpfuzz.actions import Action, Run, RunWork, Start, Step
from pcpfuzz.constants import MT
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.profiles import BASES, PROFILES, Profile, get_profile
from pcpfuzz.render import format_plain, render
from pcpfuzz.state import Task
from pcpfuzz.system import RUN_BOUND, NotEnabled, System

UPDATE_LOOP = frozenset(
    {"zone_set_pageset_high_and_batch", "__zone_set_pageset_high_and_batch", "pageset_update"}
)
"""The kernel functions whose steps one comparison step takes whole."""
UNCOMPARED_EVENTS = frozenset({"pageset update skipped: unchanged"})
"""Events that only say how a rung did something (patch 5's skip), not what it did."""
REFACTORS = ("v5.10+p1", "v5.10+p2", "v5.10+p3", "v5.10+p4", "v5.10+p5")
GEOMETRIES = (
    # One block online of two: the zone can be emptied and populated again (zone_pcp_reset,
    # setup_zone_pageset), and every sysctl value changes high/batch.
    Geometry(nr_blocks=2, online_blocks=1),
    # Default sizing at a scale where zone_batchsize is 3 (high 18): the rule of §8.1.
    Geometry(nr_blocks=2, online_blocks=1, fraction=0, sizing_scale=1024),
    # No memory at boot: the first online populates the zone (patch 3's pageset_init window).
    Geometry(nr_blocks=2, online_blocks=0),
    # Four blocks, two CPUs, the default: more room for allocations and isolation.
    Geometry(),
)


def in_update_loop(t: Task) -> bool:
    """Whether ``t`` is suspended inside a high/batch update loop (its ``yield from`` chain)."""
    g: Any = t.gen
    while g is not None:
        if g.gi_code.co_name in UPDATE_LOOP:
            return True
        g = g.gi_yieldfrom
    return False


class Runner:
    """A system driven with comparison steps: ``Step`` and ``Start`` go on through a whole
    update loop, ``Run`` is ``RUN_BOUND`` comparison steps. The raw actions are recorded, to
    render the run."""

    def __init__(self, profile: Profile, geometry: Geometry) -> None:
        self.system = System(profile, geometry)
        self.raw: list[Action] = []

    def _apply(self, action: Action) -> None:
        self.system.apply(action)
        self.raw.append(action)

    def _step(self, action: Start | Step) -> None:
        s = self.system
        self._apply(action)
        t = s.cpus[action.cpu].task
        while t is not None and s.cpus[action.cpu].task is t and in_update_loop(t):
            self._apply(Step(action.cpu))

    def _run(self, cpu: int) -> None:
        c = self.system.cpus[cpu]
        for _ in range(RUN_BOUND):
            t = c.task
            if t is None or t.hung:
                return
            if t.runnable(self.system):
                self._step(Step(cpu))
            elif c.work_pending:
                self._apply(RunWork(cpu))
            else:
                return

    def do(self, action: Action) -> None:
        """Apply ``action`` as one comparison step."""
        match action:
            case Start() | Step():
                self._step(action)
            case Run(cpu=cpu):
                self._run(cpu)
            case _:
                self._apply(action)


def observe(s: System) -> dict[str, Any]:
    """What a kernel user (and a test) can see of the system, by part."""
    z = s.zone
    return {
        "allocation results": list(s.alloc_log),
        "allocated": sorted((p, b.order, b.movable, b.holder) for p, b in s.allocated.items()),
        "in flight": sorted(s.inflight.items()),
        "freelists": [[list(fl) for fl in lists] for lists in z.free_list],
        "pcplists": [(p.count, [list(lst) for lst in p.lists]) for p in s.pcp],
        "high/batch": [(p.high, p.batch) for p in s.pcp],
        "counters": {
            "NR_FREE_PAGES": z.nr_free_pages,
            "NR_FREE_CMA_PAGES": z.nr_free_cma_pages,
            "managed": z.managed_pages,
            "present": z.present_pages,
            "nr_isolate_pageblock": z.nr_isolate_pageblock,
            "nr_free": list(z.nr_free),
        },
        "pageblocks": [MT(mt).name for mt in s.pageblock_mt],
        "online blocks": list(s.block_online),
        "fraction": s.fraction,
        "tasks": [
            None
            if c.task is None
            else (
                c.task.op,
                c.task.args,
                c.task.runnable(s),
                c.task.irq_off,
                None if c.task.wait is None else c.task.wait.describe(),
            )
            for c in s.cpus
        ],
        "drain work": [c.work_pending for c in s.cpus],
        "CPUs online": [c.online for c in s.cpus],
        "lock owners": {m.name: m.owner for m in s.mutexes},
        "events": {k: v for k, v in s.events.items() if k not in UNCOMPARED_EVENTS},
        "kernel bugs": [str(v) for v in s.bugs],
        "invariants": [str(v) for v in check(s)],
    }


def p3_boot_batch(obs: dict[str, Any]) -> dict[str, Any]:
    """Patch 3: ``pageset_init`` sets batch 1, where the predecessor's left 0."""
    hb = [(h, 1 if (h, b) == (0, 0) else b) for h, b in obs["high/batch"]]
    return {**obs, "high/batch": hb}


ALLOWED: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"v5.10+p3": p3_boot_batch}
"""Per rung, how the predecessor's observation is mapped before the comparison: the rung's
documented difference, and nothing else."""


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each differing part, down to the differing key or index."""
    out = []
    for k, a in old.items():
        b = new[k]
        if a == b:
            continue
        if isinstance(a, dict):
            keys = sorted(set(a) | set(b), key=str)
            out.extend(
                f"{k}[{i!r}]: {a.get(i)!r} != {b.get(i)!r}" for i in keys if a.get(i) != b.get(i)
            )
        elif isinstance(a, list) and len(a) == len(b):
            out.extend(
                f"{k}[{i}]: {x!r} != {y!r}"
                for i, (x, y) in enumerate(zip(a, b, strict=True))
                if x != y
            )
        else:
            out.append(f"{k}: {a!r} != {b!r}")
    return out


def both_traces(a: Runner, b: Runner) -> str:
    out = []
    for r in (a, b):
        s = r.system
        out.append(f"== {s.profile.name} ==")
        out.extend(format_plain(render(s.profile, s.geo, r.raw)))
    return "\n".join(out)


def action_key(a: Action) -> str:
    """What the generator draws first: the operation of a ``Start``, else the action kind."""
    return f"start {a.op}" if isinstance(a, Start) else type(a).__name__


def compare(rung: str, geometry: Geometry, draw: Callable[[System], Action], n: int) -> None:
    """Run ``n`` actions drawn on the predecessor on both rungs; fail on the first
    observation that differs beyond ``ALLOWED``, with both traces."""
    new = Runner(get_profile(rung), geometry)
    old = Runner(PROFILES[BASES[rung]], geometry)
    allowed = ALLOWED.get(rung, lambda o: o)
    for i in range(n):
        if not old.system.enabled():
            break
        action = draw(old.system)
        old.do(action)
        try:
            new.do(action)
        except NotEnabled as e:
            pytest.fail(
                f"action {i} ({action}) is not enabled on {rung}: {e}\n" + both_traces(old, new)
            )
        diff = differences(allowed(observe(old.system)), observe(new.system))
        if diff:
            pytest.fail(
                f"after action {i} ({action}) {rung} differs from {BASES[rung]}:\n  "
                + "\n  ".join(diff)
                + "\n"
                + both_traces(old, new)
            )


@PURE_ONLY
@pytest.mark.parametrize("rung", REFACTORS[1:])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), geometry=st.sampled_from(GEOMETRIES), n=st.integers(1, 60))
def test_refactor_changes_nothing_observable(
    rung: str, data: st.DataObject, geometry: Geometry, n: int
) -> None:
    def draw(s: System) -> Action:
        by_key: dict[str, list[Action]] = {}
        for a in s.enabled():
            by_key.setdefault(action_key(a), []).append(a)
        key = data.draw(st.sampled_from(sorted(by_key)), label="kind")
        return data.draw(st.sampled_from(by_key[key]), label="action")

    compare(rung, geometry, draw, n)


@PURE_ONLY
def test_the_comparison_fails_on_a_real_change_with_both_traces() -> None:
    # Patch 6 moves the drain out of set_migratetype_isolate: not a refactor, and the
    # comparison must say so at the first action where it shows.
    script = iter([Start(0, "offline_pages", (3,)), Step(0), Step(0), Step(0), Step(0)])
    with pytest.raises(pytest.fail.Exception) as failed:
        compare("v5.10+p6", Geometry(), lambda _s: next(script), 5)
    message = str(failed.value)
    assert "v5.10+p6 differs from v5.10+p5" in message
    assert "== v5.10+p5 ==" in message and "== v5.10+p6 ==" in message
    assert "set_migratetype_isolate(pb 12)" in message


def test_p1_is_a_rung_without_a_switch() -> None:
    # Patch 1 folds pageset_set_batch/pageset_set_high into pageset_set_high_and_batch: the
    # model's zone_high_batch already computes the pair before one pageset_update, as after it.
    assert get_profile("v5.10+p1").switches() == get_profile("v5.10").switches()
    assert "no switch" in get_profile("v5.10+p1").description


# ---- the documented differences, one interleaving each ------------------------------------------


def apply_all(name: str, geometry: Geometry, actions: list[Action]) -> System:
    s = System(get_profile(name), geometry)
    for a in actions:
        s.apply(a)
    return s


def pairs(s: System) -> list[tuple[int, int]]:
    return [(p.high, p.batch) for p in s.pcp]


def test_p2_a_sysctl_racing_an_online_gives_the_cpus_different_pairs_before_p2() -> None:
    # Block 0 online (16 pages), fraction 12. CPU0 onlines block 1, freeing it in two chunks of
    # 8; CPU1's sysctl (fraction 8) writes CPU0's pair, the online frees a chunk, then the
    # sysctl writes CPU1's pair: before patch 2 computed again, from 24 managed pages.
    geometry = Geometry(nr_blocks=2, online_blocks=1, fraction=12)
    race: list[Action] = [
        Start(0, "online_pages", (1,)),  # mem_hotplug_lock; block 1's pageblocks ISOLATE
        Start(1, "percpu_pagelist_fraction", (8,)),  # pcp_batch_high_lock; fraction 8
        Step(1),  # computes from 16 managed pages: (2, 1); CPU0 batch := 1
        Step(1),  # CPU0 high := 2
        Step(1),  # CPU0 batch := 1
        Step(0),  # nr_isolate_pageblock += 4
        Step(0),  # the first chunk is freed: 24 managed pages
        Step(1),  # p1 computes again: (3, 1); CPU1 batch := 1
        Step(1),
        Step(1),
        Step(1),  # the sysctl returns
    ]
    p1 = apply_all("v5.10+p1", geometry, race)
    p2 = apply_all("v5.10+p2", geometry, race)
    assert p1.cpus[1].task is None and p2.cpus[1].task is None
    assert pairs(p1) == [(2, 1), (3, 1)] and pairs(p2) == [(2, 1), (2, 1)]
    # Observable until the online's zone_pcp_update: CPU1 allocates two pages and frees them.
    for s in (p1, p2):
        for _ in range(2):
            s.apply(Start(1, "alloc_pages", (0, int(MT.MOVABLE))))
            s.apply(Step(1))  # refill 1, hand it out
        for pfn in s.pool():
            s.apply(Start(1, "free_pages", (pfn,)))
            s.apply(Step(1))  # commit
            if s.cpus[1].task is not None:
                s.apply(Step(1))  # count >= high: flush 1
        assert check(s) == []
    assert p1.pcp[1].count == 2  # 2 < high 3: both pages stay on the pcplist
    assert p2.pcp[1].count == 1  # 2 >= high 2: one page goes back to the buddy
    for s in (p1, p2):
        s.apply(Run(0))  # the online ends with zone_pcp_update: the same pair everywhere
        assert pairs(s) == [(4, 1), (4, 1)] and check(s) == []


def test_p3_a_fresh_pageset_has_batch_0_before_p3_which_no_allocation_can_read() -> None:
    # The zone is empty (no block online at boot); onlining block 0 runs setup_zone_pageset:
    # pageset_init leaves batch 0 before patch 3, 1 after, until the pair is written. The
    # zone is in no zonelist yet, so no allocation reads that batch: no functional change.
    geometry = Geometry(nr_blocks=2, online_blocks=0)
    window: list[Action] = [
        Start(0, "online_pages", (0,)),
        Step(0),  # nr_isolate_pageblock; setup_zone_pageset: pageset_init on every CPU
    ]
    p2 = apply_all("v5.10+p2", geometry, window)
    p3 = apply_all("v5.10+p3", geometry, window)
    assert pairs(p2) == [(0, 0), (0, 0)] and pairs(p3) == [(0, 1), (0, 1)]
    assert p2.mem_hotplug_lock.owner is not None  # inside online: not a quiescent point
    for s in (p2, p3):
        with pytest.raises(NotEnabled, match="arguments not enabled"):
            s.apply(Start(1, "alloc_pages", (0, int(MT.MOVABLE))))
        s.apply(Run(0))
        assert pairs(s) == [(2, 1), (2, 1)] and check(s) == []


def test_p4_a_reader_inside_an_update_can_see_batch_above_high() -> None:
    # Fraction 0 on 64 pages: (0, 1). The sysctl sets fraction 8: (8, 2). After its first write
    # to CPU0, v5.10's fail-safe order shows (0, 1); patch 4's batch-first order (0, 2).
    geometry = Geometry(fraction=0)
    first_write: list[Action] = [Start(1, "percpu_pagelist_fraction", (8,)), Step(1)]
    p3 = apply_all("v5.10+p3", geometry, first_write)
    p4 = apply_all("v5.10+p4", geometry, first_write)
    assert pairs(p3)[0] == (0, 1)
    assert pairs(p4)[0] == (0, 2)
    # Harmless, as the patch says: a free that reads high 0 and batch 2 frees min(count, 2).
    for s in (p3, p4):
        s.apply(Start(0, "alloc_pages", (0, int(MT.MOVABLE))))
        s.apply(Step(0))
        s.apply(Start(0, "free_pages", (s.pool()[0],)))
        s.apply(Step(0))
        s.apply(Step(0))
        s.apply(Run(1))
        assert s.pcp[0].count == 0 and pairs(s) == [(8, 2), (8, 2)] and check(s) == []


def test_p5_an_unchanged_pair_is_not_written() -> None:
    # Fraction 0 on small zones gives (0, 1) for any size: offlining a block recomputes the same
    # pair. Patch 4 writes it on every CPU again; patch 5 returns early: fewer steps, same state.
    geometry = Geometry(fraction=0)
    offline: list[Action] = [Start(0, "offline_pages", (3,)), Run(0)]
    p4 = apply_all("v5.10+p4", geometry, offline)
    p5 = apply_all("v5.10+p5", geometry, offline)
    assert p4.cpus[0].task is None and p5.cpus[0].task is None
    assert p5.events["pageset update skipped: unchanged"] == 1
    assert p5.steps < p4.steps
    assert observe(p4) == observe(p5)
