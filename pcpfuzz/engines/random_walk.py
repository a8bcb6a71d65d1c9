"""The ``random`` engine: a seeded random walk over the enabled actions, with swarm testing.

Each episode switches a random subset of the operations (and of the optional action kinds:
signals, CPU hotplug) on, then draws each action with ``pcpfuzz.engines.choice.Chooser``: a kind
uniformly among those enabled, then a CPU, then an operation and its arguments (steered towards
recently touched pages).
"""

from __future__ import annotations

import random

from pcpfuzz.engines.base import Budget, Campaign, register
from pcpfuzz.engines.choice import Chooser, draw_swarm
from pcpfuzz.engines.native import Policy, run_campaign
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System

STEPS = 100
"""Preferred episode length: long enough for an allocation, a free and an offline to meet."""


def _policy(s: System, rng: random.Random, _budget: Budget) -> Policy:
    return Chooser(rng, draw_swarm(rng, s.profile))


@register("random", steps=STEPS)
def random_engine(profile: Profile, geometry: Geometry, seed: int, budget: Budget) -> Campaign:
    """Random walks with swarm testing until the budget ends or an invariant breaks."""
    return run_campaign("random", _policy, profile, geometry, seed, budget)
