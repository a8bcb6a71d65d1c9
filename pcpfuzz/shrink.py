"""Shrinking a failing trace: delta debugging over its actions, then simplification passes.

A candidate is replayed on a fresh system that checks every invariant after each action, as
``pcpfuzz.trace.execute`` does. Removing an action shifts what later ones refer to (the pfn a
free names may now be allocated elsewhere), so the replay *repairs* a candidate as it goes: a
``Start`` whose arguments are no longer enabled takes the enabled arguments of the same
operation closest to them, and any other action that is not enabled is skipped. What is kept is
the trace that was actually applied, when it breaks the same invariant and is simpler (shorter,
or as long with lower CPUs and smaller arguments, so shrinking terminates). Every kept trace is
thus enabled action by action and replays with ``execute`` to the same invariant.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence

import attrs

from pcpfuzz.actions import ACTION_KIND, Action, Run, Start, Step
from pcpfuzz.engines.base import Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.ops import OPS
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System
from pcpfuzz.trace import execute

Trace = tuple[Action, ...]
KIND_RANK = {kind: i for i, kind in enumerate(("start", "run", "step", "work", "signal"))}
OP_RANK = {name: i for i, name in enumerate(OPS)}


def action_key(a: Action) -> tuple:
    """How simple one action is: lower CPU, then kind, then operation, then arguments."""
    if isinstance(a, Start):
        return (a.cpu, 0, OP_RANK.get(a.op, len(OP_RANK)), a.args)
    return (a.cpu, KIND_RANK.get(ACTION_KIND[type(a)], len(KIND_RANK)), 0, ())


def trace_key(actions: Sequence[Action]) -> tuple:
    """How simple a trace is: shorter first, then its actions' keys in order."""
    return (len(actions), tuple(action_key(a) for a in actions))


def _distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    return sum(abs(x - y) for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))


def repair(s: System, action: Action) -> Action | None:
    """``action`` if it is enabled in ``s``; a ``Start`` on an idle CPU with the closest enabled
    arguments of its operation; else None (skip it)."""
    if s.why_not(action) is None:
        return action
    if isinstance(action, Start):
        c = s.cpus[action.cpu] if 0 <= action.cpu < len(s.cpus) else None
        op = OPS.get(action.op)
        if c is not None and c.online and c.task is None and op is not None:
            options = op.args(s) if op.available(s.profile) else []
            if options:
                args = min(options, key=lambda x: (_distance(x, action.args), x))
                return Start(action.cpu, action.op, args)
    return None


class _Repairing(System):
    """A system that repairs or skips the actions of a candidate and records those applied."""

    def __init__(self, profile: Profile, geometry: Geometry) -> None:
        super().__init__(profile, geometry)
        self.applied: list[Action] = []

    def apply(self, action: Action) -> None:
        fixed = repair(self, action)
        if fixed is not None:
            super().apply(fixed)
            self.applied.append(fixed)


class _Oracle:
    """Replays candidates, remembers the verdicts and keeps the simplest failing trace."""

    def __init__(self, failure: Failure, deadline: float | None) -> None:
        self.profile = failure.profile
        self.geometry = failure.geometry
        self.invariant = failure.violation.invariant
        self.deadline = deadline
        self.seen: dict[Trace, Trace | None] = {}
        self.best = failure.actions
        self.replays = 0

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def fails(self, candidate: Sequence[Action]) -> Trace | None:
        """The trace applied when replaying ``candidate``, if it breaks the same invariant;
        adopted as the best when it is simpler."""
        key = tuple(candidate)
        if key in self.seen:
            return self.seen[key]
        if self.expired():
            return None
        self.replays += 1
        s = _Repairing(self.profile, self.geometry)
        out = execute(self.profile, self.geometry, key, system=s)
        applied = tuple(s.applied) if out.invariant == self.invariant else None
        self.seen[key] = applied
        if applied is not None and trace_key(applied) < trace_key(self.best):
            self.best = applied
        return applied

    def improves(self, candidate: Sequence[Action]) -> bool:
        """Whether ``candidate`` made the best trace simpler."""
        before = self.best
        self.fails(candidate)
        return self.best is not before


def ddmin(actions: Trace, fails: Callable[[Trace], Trace | None]) -> Trace:
    """Zeller's delta debugging: a 1-minimal failing sub-sequence of ``actions``. ``fails``
    returns the failing trace to continue from (the candidate or a repaired one), or None."""
    n = 2
    while len(actions) >= 2:
        size = -(-len(actions) // n)
        chunks = [actions[i : i + size] for i in range(0, len(actions), size)]
        for i in range(len(chunks)):
            kept = fails(chunks[i])
            if kept is not None:
                actions, n = kept, 2
                break
            if len(chunks) > 2:
                kept = fails(tuple(itertools.chain.from_iterable(chunks[:i] + chunks[i + 1 :])))
                if kept is not None:
                    actions, n = kept, max(n - 1, 2)
                    break
        else:
            if n >= len(actions):
                break
            n = min(2 * n, len(actions))
    return actions


def _drop_each(o: _Oracle) -> None:
    """Try removing each action, then each pair of neighbours, from the end."""
    for width in (1, 2):
        i = len(o.best) - width
        while i >= 0:
            o.fails(o.best[:i] + o.best[i + width :])
            i = min(i - 1, len(o.best) - width)


def _steps_to_runs(o: _Oracle) -> None:
    """Replace each run of consecutive ``Step(c)`` by one ``Run(c)``, longest first."""
    runs = []
    i = 0
    for action, group in itertools.groupby(o.best):
        n = len(list(group))
        if isinstance(action, Step) and n >= 2:
            runs.append((n, i, action.cpu))
        i += n
    for n, start, cpu in sorted(runs, reverse=True):
        best = o.best
        if best[start : start + n] == (Step(cpu),) * n:
            o.fails(best[:start] + (Run(cpu),) + best[start + n :])


def _lower_cpus(o: _Oracle) -> None:
    """Rename the CPUs (all of a CPU's actions at once), trying each permutation."""
    used = sorted({a.cpu for a in o.best})
    if len(used) > 4:
        return
    for target in itertools.permutations(range(o.geometry.nr_cpus), len(used)):
        mapping = dict(zip(used, target, strict=True))
        o.fails(tuple(attrs.evolve(a, cpu=mapping[a.cpu]) for a in o.best))


def _smaller_args(o: _Oracle) -> None:
    """For each ``Start``, try the enabled arguments of its operation that are smaller."""
    i = 0
    while i < len(o.best) and not o.expired():
        a = o.best[i]
        if isinstance(a, Start):
            s = System(o.profile, o.geometry)
            for prev in o.best[:i]:
                s.apply(prev)
            for args in sorted(OPS[a.op].args(s)):
                if args >= a.args or o.improves(
                    o.best[:i] + (Start(a.cpu, a.op, args),) + o.best[i + 1 :]
                ):
                    break
        i += 1


PASSES = (_drop_each, _steps_to_runs, _lower_cpus, _smaller_args)


def shrink(failure: Failure, deadline: float | None = None) -> Failure:
    """The simplest trace found that breaks ``failure``'s invariant: ddmin over the actions
    (cut after the failing one), then passes that drop actions, replace ``Step`` runs by
    ``Run``, move actions to lower CPUs and lower the arguments, repeated until none helps or
    the ``time.monotonic()`` ``deadline`` passes."""
    o = _Oracle(failure, deadline)
    actions = failure.actions if failure.at < 0 else failure.actions[: failure.at + 1]
    if o.fails(actions) is None:
        return failure
    ddmin(o.best, o.fails)
    while not o.expired():
        before = o.best
        for simplify in PASSES:
            simplify(o)
        if o.best == before:
            break
        ddmin(o.best, o.fails)
    out = execute(o.profile, o.geometry, o.best)
    return Failure(o.profile, o.geometry, o.best, out.violation, out.at)
