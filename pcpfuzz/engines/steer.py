"""Steering the native engines toward the states where the §15.1 races live.

A race of spec §15.1 needs a free in flight (its migratetype cached, not yet committed) while an
isolation of its page runs: an offline, an ``alloc_contig_range`` or a pcp-disable user
(v5.11's ``get_hwpoison_page``) takes the range, isolates and drains, and only then does the
free commit. Uniform choices rarely line these up: a free spends one or two actions in flight,
and a start draws an isolation user one time in ten. ``SteeredChooser`` adds two steers on top
of ``pcpfuzz.engines.choice.Chooser``, each taken with probability ``STEER`` when it applies:

- *isolate what is in flight*: a start on an idle CPU while a free is in flight starts an
  isolation user of the swarm whose range holds a page in flight;
- *let the isolation overtake the free*: while a free task has a page in flight, a runnable
  isolation user runs (``Run``) before the free's CPU is scheduled again, or, when none runs,
  one starts on an idle CPU.

Every steered action is one the plain chooser could draw in the same state (the swarm's
operations, enabled arguments, a runnable task), so the support is unchanged (a test checks
this); only the weights move. All the randomness is the episode's ``rng``.
"""

from __future__ import annotations

from pcpfuzz.actions import Action, Run, Start
from pcpfuzz.engines.choice import Chooser, near
from pcpfuzz.ops import OPS
from pcpfuzz.system import System

STEER = 0.7
"""Probability of taking a steer that applies (the rest of the time the plain choice stands, so
everything else is still explored)."""
RACERS = (
    "offline_pages",
    "alloc_contig_range",
    "get_hwpoison_page",
    "online_pages",
    "percpu_pagelist_fraction",
    "percpu_pagelist_high_fraction",
)
"""Operations that race with a free in flight: the isolation and pcp-disable users (§15.1), and
those that rewrite the pagesets' high and batch under it (online, the fraction sysctls)."""
NAMES_PAGES = frozenset(("offline_pages", "alloc_contig_range"))
"""Racers whose arguments name pages: steered to a range that holds a page in flight."""
PAGE_WEIGHT = 3
"""Weight of a racer that names a page in flight against one that names none."""
FREES = frozenset(("free_pages", "free_unref_page_list"))
"""Operations whose page is in flight between their prepare and commit steps."""


class SteeredChooser(Chooser):
    """``Chooser`` with the two steers of this module."""

    def start(self, s: System, cpu: int) -> Start | None:
        """A steered isolation of a page in flight on idle ``cpu``, else the plain start."""
        if s.inflight and self.rng.random() < STEER:
            action = self.isolate_inflight(s, cpu)
            if action is not None:
                return action
        return super().start(s, cpu)

    def isolate_inflight(self, s: System, cpu: int) -> Start | None:
        """An isolation user of the swarm whose range holds a page in flight, with arguments
        drawn uniformly among those; None when the swarm has none enabled."""
        rng = self.rng
        pfns = list(s.inflight)
        options = []
        for name in RACERS:
            if name not in self.swarm.ops:
                continue
            args = OPS[name].args(s)
            if name in NAMES_PAGES:
                options += [(name, hit)] * PAGE_WEIGHT if (hit := near(s, name, args, pfns)) else []
            elif args:
                options.append((name, args))
        if not options:
            return None
        name, hit = options[int(rng.random() * len(options))]
        return Start(cpu, name, hit[int(rng.random() * len(hit))])

    def __call__(self, s: System) -> Action | None:
        """The steered action while a free is in flight (``steer``), else the plain choice."""
        action = self.steer(s) if s.inflight and self.rng.random() < STEER else None
        if action is None:
            return super().__call__(s)
        self.observe(s)
        return action

    def steer(self, s: System) -> Action | None:
        """While a free is in flight: ``Run`` of a runnable isolation user on another CPU (the
        racer must be its CPU's innermost context: a ``Run`` under an interrupt runs that), else
        the start of one on an idle CPU (``isolate_inflight``); None when neither applies."""
        cpus = s.cpus
        if not any(c.task is not None and c.task.op in FREES for c in cpus):
            return None
        rng = self.rng
        running = [c.running() for c in cpus]
        able = [
            i for i, t in enumerate(running) if t is not None and t.op in RACERS and t.runnable(s)
        ]
        if able:
            return Run(able[int(rng.random() * len(able))])
        idle = [i for i, c in enumerate(cpus) if c.online and c.task is None]
        if not idle:
            return None
        return self.isolate_inflight(s, idle[int(rng.random() * len(idle))])
