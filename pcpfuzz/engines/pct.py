"""The ``pct`` engine: probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010).

Each episode gives the CPUs distinct random priorities (all at least ``d``) and picks ``d - 1``
priority change points among its ``k`` steps. At every step the highest-priority CPU that has
something enabled runs one atomic step: its pending drain work first (the kworker preempts the
task as soon as IRQs are on), else its task's next step, else, when idle, the start of an
operation drawn as the ``random`` engine draws one (swarm, recency, and while a free is in
flight often a racer of it, ``pcpfuzz.engines.steer``). At the ``i``-th change
point that CPU's priority drops to ``d - i``, below every initial one. For a given choice of
operations, a bug of depth ``d`` is then hit in one episode with probability at least
``1 / (n * k^(d-1))`` on ``n`` CPUs; the campaign reports that bound.

Signals and CPU hotplug are not a CPU's next step but events from outside the scheduler: each
episode also picks ``EVENTS`` event points among its steps, and at an event point where the
swarm has one enabled, a signal (to a running offline) or a CPU going down or coming up
(``Chooser.event``) happens instead of the scheduled step (an event point where none is enabled
passes: a pending signal would latch onto the next offline and end every race it starts). The
bound is for a bug that needs no event.
"""

from __future__ import annotations

import random

from pcpfuzz.actions import Action, RunWork, Step
from pcpfuzz.engines.base import Budget, Campaign, register
from pcpfuzz.engines.choice import draw_swarm
from pcpfuzz.engines.native import PolicyFactory, run_campaign
from pcpfuzz.engines.steer import SteeredChooser
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System

DEPTH = 3
"""Bug depth: the §15.1 race needs two scheduling changes (free prepared, offline isolates and
drains, the free commits)."""


EVENTS = 1
"""Event points per episode. A signal ends an offline and a CPU going down drains its
pcplists, so each event also ends races: measured on v5.9-nofix (seeds 0-7, first failing
example), 1 event per episode finds the race about as fast as none (median ~106 examples
against ~135), 2 or 3 about half as fast."""


STEPS = 200
"""Preferred ``k``: the highest-priority CPU runs operation after operation, so a longer episode
gives a change point more operation boundaries to land on (measured: ``benchmarks/``)."""


def pct_bound(nr_cpus: int, steps: int, depth: int) -> float:
    """PCT's guarantee: the probability of hitting a given depth-``depth`` bug in one episode."""
    return 1.0 / (nr_cpus * steps ** (depth - 1))


def _cpu_action(s: System, chooser: SteeredChooser, cpu: int) -> Action | None:
    """What ``cpu`` does if scheduled now, or None when it has nothing enabled."""
    c = s.cpus[cpu]
    if not c.online:
        return None
    if s.work_runnable(cpu):
        return RunWork(cpu)
    t = c.running()
    if t is None:
        return chooser.start(s, cpu)
    return Step(cpu) if t.runnable(s) else None


class _Schedule:
    """One episode's PCT schedule: CPU priorities and the pending change points."""

    def __init__(self, s: System, rng: random.Random, steps: int, depth: int) -> None:
        self.chooser = SteeredChooser(rng, draw_swarm(rng, s.profile))
        self.prio = list(range(depth, depth + len(s.cpus)))
        rng.shuffle(self.prio)
        self.changes = sorted(rng.sample(range(steps), min(depth - 1, steps)), reverse=True)
        self.depth = depth
        self.changed = 0
        self.step = 0
        self.events = sorted(rng.sample(range(steps), min(EVENTS, steps)), reverse=True)

    def __call__(self, s: System) -> Action | None:
        """A due event, else the highest-priority CPU's action; at a change point, that CPU is
        then demoted."""
        self.chooser.observe(s)
        step = self.step
        self.step += 1
        if self.events and self.events[-1] == step:
            self.events.pop()
            event = self.chooser.event(s)
            if event is not None:
                return event
        for cpu in sorted(range(len(self.prio)), key=self.prio.__getitem__, reverse=True):
            action = _cpu_action(s, self.chooser, cpu)
            if action is not None:
                if self.changes and self.changes[-1] <= step:
                    self.changes.pop()
                    self.changed += 1
                    self.prio[cpu] = self.depth - self.changed
                return action
        return None


def pct_policy(depth: int = DEPTH) -> PolicyFactory:
    """The factory of one episode's schedule at depth ``depth``."""
    return lambda s, rng, b: _Schedule(s, rng, b.steps, depth)


@register("pct", steps=STEPS)
def pct_engine(
    profile: Profile, geometry: Geometry, seed: int, budget: Budget, depth: int = DEPTH
) -> Campaign:
    """PCT episodes of ``budget.steps`` steps at depth ``depth``."""
    return run_campaign(
        "pct",
        pct_policy(depth),
        profile,
        geometry,
        seed,
        budget,
        bound=pct_bound(geometry.nr_cpus, budget.steps, depth),
    )
