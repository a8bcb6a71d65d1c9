"""The state machine's lazy choice (``stateful.kinds.choose``) names exactly the (kind, CPU)
that ``pick_choice`` names over the full ``enabled_kinds`` list, with a swarm left out, on
states of seeded random walks of several profiles (the 5.x kernels, v6.1, v6.12); its ``Scan``
lists the CPUs ``System.why_not`` enables."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from pcpfuzz.engines.choice import Chooser, full_swarm
from pcpfuzz.ladder import geometry_for
from pcpfuzz.ops import campaign_keeps_populated
from pcpfuzz.profiles import get_profile
from pcpfuzz.system import System
from stateful.kinds import (
    CHOICES,
    CPU_ACTIONS,
    SWARM,
    Scan,
    all_args,
    but_the_last_block,
    choose,
    enabled_kinds,
    pick_choice,
    schedule,
)


def states(profile: str, seed: int, length: int) -> Iterator[System]:
    """A seeded random walk's system after each of its actions (one object, moving on)."""
    p = get_profile(profile)
    s = System(p, geometry_for(profile), keep_populated=campaign_keeps_populated(p))
    walk = Chooser(random.Random(seed), full_swarm(p))
    for _ in range(length):
        action = walk(s)
        if action is None:
            break
        s.apply(action)
        yield s


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.11", "v6.1", "v6.12"])
def test_the_lazy_choice_names_what_the_full_enabled_list_names(profile: str) -> None:
    rng = random.Random(profile)
    checked = 0
    for seed in range(6):
        for s in states(profile, seed, 60):
            n = len(s.cpus)
            sched = schedule(n, rng.choice([None, *range(n)]))
            off = frozenset(k for k in SWARM if rng.random() < 0.5)
            args = rng.choice((all_args, but_the_last_block))
            enabled = enabled_kinds(s, args)
            kept = {k: c for k, c in enabled.items() if k not in off} or enabled
            for i in rng.sample(range(len(CHOICES)), 64):
                assert choose(i, s, sched, args, off) == pick_choice(i, kept, n, sched)
            checked += 1
    assert checked > 300


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.11", "v6.1", "v6.12"])
def test_the_scan_lists_the_cpus_system_why_not_enables(profile: str) -> None:
    """``Scan`` takes the scheduling, signal and hotplug kinds' CPUs from one pass over the
    CPUs (``cpu_groups``): they are exactly those ``System.why_not`` enables."""
    checked = 0
    for seed in range(4):
        for s in states(profile, seed, 60):
            scan = Scan(s)
            for kind, action in CPU_ACTIONS.items():
                expect = [i for i in range(len(s.cpus)) if s.why_not(action(i)) is None]
                assert scan.kind_cpus(kind) == expect, (kind, s.cpus)
            checked += 1
    assert checked > 150
