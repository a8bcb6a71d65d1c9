"""The ``random`` engine: a seeded random walk over the enabled actions, with swarm testing.

Each episode switches a random subset of the operations (and of the optional action kinds:
signals, CPU hotplug) on, then draws each action with ``pcpfuzz.engines.choice.choose``: a kind
uniformly among those enabled, then a CPU, then an operation and its arguments.
"""

from __future__ import annotations

import random
from functools import partial

from pcpfuzz.engines.base import Budget, Campaign, register
from pcpfuzz.engines.choice import choose, draw_swarm
from pcpfuzz.engines.native import Policy, run_campaign
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System


def _policy(s: System, rng: random.Random, _budget: Budget) -> Policy:
    swarm = draw_swarm(rng, s.profile)
    return partial(choose, rng=rng, swarm=swarm)


@register("random")
def random_engine(profile: Profile, geometry: Geometry, seed: int, budget: Budget) -> Campaign:
    """Random walks with swarm testing until the budget ends or an invariant breaks."""
    return run_campaign("random", _policy, profile, geometry, seed, budget)
