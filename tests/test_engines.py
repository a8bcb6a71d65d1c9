"""The native engines (random walk, PCT): they find the §15.1 race on v5.9-nofix, shrink it to a
short trace that replays to the same invariant, find nothing on v5.11, and are deterministic.

Budgets are counted in examples, not seconds, so that results do not depend on the machine.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

import pcpfuzz.engines.pct  # noqa: F401  (registers "pct")
import pcpfuzz.engines.random_walk  # noqa: F401  (registers "random")
from pcpfuzz.actions import CpuDown, CpuUp, Interrupt, Run, RunWork, Signal, Start, Step
from pcpfuzz.engines import choice
from pcpfuzz.engines.base import ENGINES, EPISODE_STEPS, Budget
from pcpfuzz.engines.choice import KINDS, Chooser, full_swarm, support
from pcpfuzz.engines.native import episode_rng, run_episode
from pcpfuzz.engines.pct import DEPTH, EVENTS, pct_bound, pct_policy
from pcpfuzz.engines.random_walk import _policy as random_walk_policy
from pcpfuzz.geometry import Geometry
from pcpfuzz.ladder import geometry_for
from pcpfuzz.ops import campaign_keeps_populated
from pcpfuzz.profiles import PROFILES, get_profile
from pcpfuzz.system import System
from pcpfuzz.trace import execute

NATIVE = ("random", "pct")
RACE = {"ISO-PCP", "OFFLINE-TERM"}
"""The §15.1 race shows as a page on a drained pcplist, or as an offline that cannot finish."""


def _budget(engine: str, examples: int) -> Budget:
    return Budget(max_examples=examples, seconds=600.0, steps=EPISODE_STEPS[engine])


@pytest.mark.parametrize("engine", NATIVE)
def test_finds_the_race_on_v59_nofix_and_shrinks_it(engine: str) -> None:
    profile = get_profile("v5.9-nofix")
    c = ENGINES[engine](profile, Geometry(), 1, _budget(engine, 2000))
    assert c.failure is not None, f"{engine} found nothing in {c.examples} examples"
    f = c.failure
    assert f.violation.invariant in RACE
    assert len(f.actions) <= 8 < c.original_length
    replay = execute(profile, Geometry(), f.actions)
    assert (replay.invariant, replay.at) == (f.violation.invariant, f.at)
    assert c.found_after is not None and c.shrink_seconds is not None
    assert c.events.get("free committed with a stale migratetype", 0) >= 1


@pytest.mark.parametrize("engine", NATIVE)
def test_finds_nothing_on_v511(engine: str) -> None:
    c = ENGINES[engine](get_profile("v5.11"), Geometry(), 3, _budget(engine, 30))
    assert c.failure is None, c.failure and c.failure.violation
    assert c.examples == 30
    assert c.model_steps > 30 * 10


@pytest.mark.parametrize("engine", NATIVE)
def test_same_seed_same_trace(engine: str) -> None:
    profile = get_profile("v5.8-online-nopcpupdate")
    geometry = geometry_for(profile.name)
    runs = [ENGINES[engine](profile, geometry, 5, _budget(engine, 200)) for _ in range(2)]
    a, b = (r.failure for r in runs)
    assert a is not None and b is not None
    assert a.actions == b.actions and a.violation == b.violation
    assert runs[0].examples == runs[1].examples
    assert runs[0].model_steps == runs[1].model_steps


def test_pct_reports_its_bound() -> None:
    geometry = Geometry()
    c = ENGINES["pct"](get_profile("v5.11"), geometry, 0, _budget("pct", 2))
    k = EPISODE_STEPS["pct"]
    assert c.bound == pct_bound(geometry.nr_cpus, k, DEPTH) == 1 / (2 * k ** (DEPTH - 1))


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.10", "v5.11"])
def test_chooser_draws_exactly_the_enabled_actions(profile: str) -> None:
    """With every operation and kind on, the chooser's support is ``System.enabled()``, and
    each action it draws is enabled (``apply`` would raise otherwise)."""
    p = PROFILES[profile]
    swarm = full_swarm(p)
    for seed in range(3):
        s = System(p, Geometry())
        choose = Chooser(random.Random(seed), swarm)
        for _ in range(80):
            assert support(s, swarm) == set(s.enabled())
            action = choose(s)
            if action is None:
                break
            s.apply(action)


def _pct_episodes(profile: str, episodes: int) -> list[list]:
    """The actions of the first ``episodes`` pct episodes on ``profile`` (seed 0)."""
    make_policy = pct_policy()
    out = []
    for index in range(episodes):
        s = System(get_profile(profile), Geometry())
        policy = make_policy(s, episode_rng("pct", 0, index), _budget("pct", 1))
        actions, _failure = run_episode(s, policy, EPISODE_STEPS["pct"])
        out.append(actions)
    return out


def test_pct_delivers_signals_and_takes_cpus_down() -> None:
    """pct's event points: over a few episodes it signals running offlines and takes CPUs
    down, each only where enabled (``apply`` would raise otherwise), at most ``EVENTS`` times
    an episode."""
    episodes = _pct_episodes("v5.10", 40)
    seen = Counter(type(a).__name__ for actions in episodes for a in actions)
    assert seen["Signal"] >= 3 and seen["CpuDown"] >= 3, seen
    events = (Signal, CpuDown, CpuUp)
    assert all(sum(isinstance(a, events) for a in actions) <= EVENTS for actions in episodes)


KIND_OF = {
    Start: "start",
    Step: "step",
    Run: "run",
    RunWork: "work",
    Signal: "signal",
    Interrupt: "irq",
}


def rescan_groups(s: System, kinds: frozenset[str]) -> dict[str, list[int]]:
    """The chooser's CPU groups read off ``System.enabled()``: every CPU with a ``Start`` (an
    idle online CPU: ``drain_local_pages`` always has arguments), a ``Step`` (and so a
    ``Run``), a ``RunWork``, a ``Signal``, a ``CpuDown`` or ``CpuUp``."""
    found: dict[str, list[int]] = {k: [] for k in KINDS}
    for a in s.enabled():
        cpus = found[KIND_OF.get(type(a), "cpu")]
        if a.cpu not in cpus:
            cpus.append(a.cpu)
    found["run"] = found["step"]
    return {k: cpus for k, cpus in found.items() if cpus and k in kinds}


def rescan_near(s: System, op: str, args: list, recent) -> list:
    """``choice.near`` by building the pfn set of each argument tuple."""
    if op in ("free_pages", "free_unref_page_list"):
        pfns = lambda a: a  # noqa: E731
    elif op == "alloc_contig_range":
        span = max(s.geo.max_order_nr_pages, s.geo.pageblock_nr_pages)
        pfns = lambda a: range(a[0], a[0] + span)  # noqa: E731
    elif op in ("offline_pages", "online_pages"):
        pfns = lambda a: range(*s.geo.block_range(a[0]))  # noqa: E731
    else:
        return []
    return [a for a in args if set(recent) & set(pfns(a))]


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.11", "v6.1", "v6.12"])
@pytest.mark.parametrize("engine", NATIVE)
def test_chooser_draws_what_a_rescan_draws(
    engine: str, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chooser's one-pass CPU groups and recency filter pick exactly the actions that
    groups read off ``System.enabled()`` and pfn sets built per argument tuple pick, on
    seeded random walks of each engine (the same seed replays the same campaign)."""
    p, geometry = get_profile(profile), geometry_for(profile)
    make = {"random": random_walk_policy, "pct": pct_policy()}[engine]
    budget = _budget(engine, 1)

    def walks() -> list[tuple]:
        out = []
        for index in range(12):
            s = System(p, geometry, keep_populated=campaign_keeps_populated(p))
            actions, _ = run_episode(s, make(s, episode_rng(engine, 0, index), budget), 120)
            out.append(tuple(actions))
        return out

    fast = walks()
    monkeypatch.setattr(choice, "cpu_groups", rescan_groups)
    monkeypatch.setattr(choice, "near", rescan_near)
    assert walks() == fast
    assert sum(map(len, fast)) > 200
