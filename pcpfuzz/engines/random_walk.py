"""The ``random`` engine: a seeded random walk over the enabled actions, with swarm testing.

Each episode switches a random subset of the operations (and of the optional action kinds:
signals, CPU hotplug) on, then draws each action with ``pcpfuzz.engines.steer.SteeredChooser``:
a kind uniformly among those enabled, then a CPU, then an operation and its arguments (steered
towards recently touched pages), except that while a free is in flight a racer (an isolation
user, online, a fraction sysctl) is often started on an idle CPU or run ahead of the free.
"""

from __future__ import annotations

import random

from pcpfuzz.engines.base import Budget, Campaign, register
from pcpfuzz.engines.choice import draw_swarm
from pcpfuzz.engines.native import Policy, run_campaign
from pcpfuzz.engines.steer import SteeredChooser
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System

STEPS = 100
"""Preferred episode length: long enough for an allocation, a free and an offline to meet."""


def _policy(s: System, rng: random.Random, _budget: Budget) -> Policy:
    return SteeredChooser(rng, draw_swarm(rng, s.profile))


@register("random", steps=STEPS)
def random_engine(profile: Profile, geometry: Geometry, seed: int, budget: Budget) -> Campaign:
    """Random walks with swarm testing until the budget ends or an invariant breaks."""
    return run_campaign("random", _policy, profile, geometry, seed, budget)
