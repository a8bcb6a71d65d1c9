"""The native engines' steering (``pcpfuzz.engines.steer``): it draws only what the plain chooser
could draw, it lines a racer up with a free in flight, and it finds the §15.1 race in fewer
episodes than the plain chooser does on the same seeds."""

from __future__ import annotations

import random
import statistics

import pytest

from pcpfuzz.actions import Run, Start
from pcpfuzz.engines.base import Budget
from pcpfuzz.engines.choice import Chooser, draw_swarm, full_swarm, support
from pcpfuzz.engines.native import Policy, PolicyFactory, run_campaign
from pcpfuzz.engines.steer import NAMES_PAGES, RACERS, SteeredChooser
from pcpfuzz.geometry import DEFAULT_GEOMETRY, Geometry
from pcpfuzz.profiles import PROFILES, get_profile
from pcpfuzz.system import System


class AlwaysSteer(random.Random):
    """A random source whose ``random()`` is always 0: every steer that applies is taken."""

    def random(self) -> float:
        return 0.0


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.11", "v6.1"])
def test_every_steered_action_is_one_the_plain_chooser_could_draw(profile: str) -> None:
    p = PROFILES[profile]
    for seed in range(4):
        rng = random.Random(seed)
        swarm = draw_swarm(rng, p) if seed % 2 else full_swarm(p)
        s = System(p, Geometry())
        choose = SteeredChooser(rng, swarm)
        for _ in range(80):
            action = choose(s)
            if action is None:
                break
            assert action in support(s, swarm)
            s.apply(action)


def _free_in_flight() -> System:
    """v5.9-nofix with CPU1's free of pfn 56 prepared (its migratetype cached), CPU0 idle."""
    s = System(get_profile("v5.9-nofix"), DEFAULT_GEOMETRY)
    for action in (Start(0, "alloc_pages", (0, 1)), Run(0), Start(1, "free_pages", (56,))):
        s.apply(action)
    assert 56 in s.inflight and s.cpus[1].task is not None
    return s


def test_a_free_in_flight_gets_a_racer_on_the_idle_cpu_then_the_racer_runs() -> None:
    s = _free_in_flight()
    choose = SteeredChooser(AlwaysSteer(), full_swarm(s.profile))
    action = choose(s)
    assert isinstance(action, Start) and action.cpu == 0 and action.op in RACERS
    if action.op in NAMES_PAGES:  # AlwaysSteer picks the first racer: offline of pfn 56's block
        assert action.op == "offline_pages" and action.args == (56 // s.geo.block_pages,)
    s.apply(action)
    assert choose(s) == Run(0)


def _episodes_to_race(factory: PolicyFactory, seeds: range) -> list[int]:
    budget = Budget(max_examples=400, seconds=60, steps=100)
    out = []
    for seed in seeds:
        c = run_campaign(
            "random", factory, get_profile("v5.9-nofix"), DEFAULT_GEOMETRY, seed, budget
        )
        out.append(c.examples if c.failure is not None else 10**6)
    return out


def _plain(s: System, rng: random.Random, _b: Budget) -> Policy:
    return Chooser(rng, draw_swarm(rng, s.profile))


def _steered(s: System, rng: random.Random, _b: Budget) -> Policy:
    return SteeredChooser(rng, draw_swarm(rng, s.profile))


def test_steering_finds_the_race_in_fewer_episodes() -> None:
    seeds = range(6)
    steered = _episodes_to_race(_steered, seeds)
    plain = _episodes_to_race(_plain, seeds)
    assert max(steered) < 10**6
    assert statistics.median(steered) < statistics.median(plain)
