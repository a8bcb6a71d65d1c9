"""The ``pct`` engine: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).

Each episode gives the CPUs distinct random priorities (all at least ``d``) and picks ``d - 1``
priority change points among its ``k`` steps. At every step the highest-priority CPU that has
something enabled runs one atomic step: its task's next step or its pending drain work (a coin
decides when both can run), or, when idle, the start of an operation drawn from the episode's
swarm. At the ``i``-th change point that CPU's priority drops to ``d - i``, below every initial
one. A bug of depth ``d`` is then found in one episode with probability at least
``1 / (n * k^(d-1))`` on ``n`` CPUs; the campaign reports that bound. Signals and CPU hotplug
are left to the ``random`` engine.
"""

from __future__ import annotations

import random

from pcpfuzz.actions import Action, RunWork, Step
from pcpfuzz.engines.base import Budget, Campaign, register
from pcpfuzz.engines.choice import choose_start, draw_swarm
from pcpfuzz.engines.native import run_campaign
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System

DEPTH = 3
"""Bug depth: the §15.1 race needs two scheduling changes (free prepared, offline isolates and
drains, the free commits)."""


def pct_bound(nr_cpus: int, steps: int, depth: int) -> float:
    """PCT's guarantee: the probability of hitting a given depth-``depth`` bug in one episode."""
    return 1.0 / (nr_cpus * steps ** (depth - 1))


def _cpu_action(s: System, rng: random.Random, cpu: int, ops: tuple[str, ...]) -> Action | None:
    """What ``cpu`` does if scheduled now, or None when it has nothing enabled."""
    c = s.cpus[cpu]
    if not c.online:
        return None
    t = c.task
    work = c.work_pending and (t is None or not t.irq_off)
    if t is None:
        return RunWork(cpu) if work and rng.random() < 0.5 else choose_start(s, rng, cpu, ops)
    if t.runnable(s):
        return RunWork(cpu) if work and rng.random() < 0.5 else Step(cpu)
    return RunWork(cpu) if work else None


class _Schedule:
    """One episode's PCT schedule: CPU priorities and the pending change points."""

    def __init__(self, s: System, rng: random.Random, steps: int, depth: int) -> None:
        self.rng = rng
        self.ops = draw_swarm(rng, s.profile).ops
        self.prio = list(range(depth, depth + len(s.cpus)))
        rng.shuffle(self.prio)
        self.changes = sorted(rng.sample(range(steps), min(depth - 1, steps)), reverse=True)
        self.depth = depth
        self.changed = 0
        self.step = 0

    def __call__(self, s: System) -> Action | None:
        """The highest-priority CPU's action; at a change point, that CPU is then demoted."""
        step = self.step
        self.step += 1
        for cpu in sorted(range(len(self.prio)), key=self.prio.__getitem__, reverse=True):
            action = _cpu_action(s, self.rng, cpu, self.ops)
            if action is not None:
                if self.changes and self.changes[-1] == step:
                    self.changes.pop()
                    self.changed += 1
                    self.prio[cpu] = self.depth - self.changed
                return action
        return None


@register("pct")
def pct_engine(
    profile: Profile, geometry: Geometry, seed: int, budget: Budget, depth: int = DEPTH
) -> Campaign:
    """PCT episodes of ``budget.steps`` steps at depth ``depth``."""
    return run_campaign(
        "pct",
        lambda s, rng, b: _Schedule(s, rng, b.steps, depth),
        profile,
        geometry,
        seed,
        budget,
        bound=pct_bound(geometry.nr_cpus, budget.steps, depth),
    )
