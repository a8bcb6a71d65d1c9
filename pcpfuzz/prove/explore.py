"""The exhaustive search: every schedule of the actions in scope, breadth-first (shortest
counterexamples) or depth-first, with states already explored recognised and not explored
again (``pcpfuzz.prove.canonical``).

A task is a suspended generator and cannot be copied, so a state is kept as the path of actions
that reaches it and re-created by replaying that path on a fresh ``System`` through the public
door (``System.apply``); each transition costs a replay of its source state's path. Every
invariant is checked after every transition (also into states seen before: some invariants read
what the last action allocated), and OFFLINE-TERM / DEADLOCK with ``pcpfuzz.liveness.finish``
at every leaf: a state with no action in scope, or one a bound stops.

Bounds, each reported when it cut something: ``preemptions`` (a preemption is an action on
another CPU while the task of the CPU that acted last could still step; CHESS's bound; the
search remembers the fewest preemptions a state was reached with and explores it again when
reached with fewer), ``depth`` (actions from boot), and ``retries``: a state where a task has
passed its retry loops ``retries`` times (``Task.loop_iterations``, part of the state) is a
leaf, checked at rest like any other; ``OFFLINE_BOUND``, what OFFLINE-TERM allows, by default.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import attrs

from pcpfuzz.actions import Action
from pcpfuzz.engines.base import Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.liveness import OFFLINE_BOUND, finish
from pcpfuzz.profiles import Profile
from pcpfuzz.prove.canonical import state_key
from pcpfuzz.prove.scope import Scope
from pcpfuzz.system import System
from pcpfuzz.trace import END

LIVE_CAP = 20_000
"""The most frontier states kept as live systems; the others are replayed when expanded."""
PROGRESS_SECONDS = 0.5
"""Seconds between two reports to the progress callback."""


@attrs.frozen
class Bounds:
    """What the search covers, and when it gives up (``max_states``, ``seconds``)."""

    preemptions: int | None = 2
    depth: int | None = None
    retries: int = OFFLINE_BOUND
    max_states: int | None = None
    seconds: float | None = None
    dfs: bool = False


@attrs.define
class Stats:
    """What the search has covered so far."""

    states: int = 0
    """Distinct states reached (the boot state included)."""
    transitions: int = 0
    expanded: int = 0
    depth: int = 0
    """The deepest state reached, in actions from boot."""
    frontier: int = 0
    leaves: int = 0
    """States checked at rest (``finish``)."""
    cut_preemptions: int = 0
    """Transitions not taken because they would exceed the preemption bound."""
    cut_depth: int = 0
    """States at the depth bound with actions left."""
    cut_retries: int = 0
    """States where a task reached the retry bound."""
    other: int = 0
    """Violations of invariants other than the one searched for (those states are pruned)."""
    replayed: int = 0
    """Actions applied to re-create states (the cost of not copying generators)."""
    seconds: float = 0.0

    @property
    def cut(self) -> bool:
        return bool(self.cut_preemptions or self.cut_depth or self.cut_retries)

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds else 0.0


@attrs.frozen
class Proof:
    """The verdict: ``proved`` within the bounds, ``violation`` (with the shortest failure in
    BFS order), or ``limit`` (which one stopped the search before it closed)."""

    verdict: str
    stats: Stats
    failure: Failure | None = None
    limit: str | None = None


@attrs.define(slots=True)
class _Node:
    parent: _Node | None
    action: Action | None
    depth: int
    preemptions: int
    last: int | None
    used: tuple[int, ...]
    system: System | None = None
    """The state itself, kept from the transition that reached it (while ``LIVE_CAP``
    allows), so that its first expansion needs no replay."""

    def path(self) -> tuple[Action, ...]:
        out = []
        node: _Node | None = self
        while node is not None and node.action is not None:
            out.append(node.action)
            node = node.parent
        return tuple(reversed(out))


class _Search:
    def __init__(
        self,
        profile: Profile,
        geometry: Geometry,
        scope: Scope,
        bounds: Bounds,
        progress: Callable[[Stats], None] | None,
        only: str | None,
    ) -> None:
        self.profile, self.geometry, self.scope, self.bounds = profile, geometry, scope, bounds
        self.only = only
        self.progress = progress
        self.stats = Stats()
        self.seen: dict[bytes, tuple[int, int]] = {}
        self.best: Failure | None = None
        self.began = time.perf_counter()
        self.reported = self.began

    def replay(self, path: tuple[Action, ...]) -> System:
        s = System(self.profile, self.geometry)
        for a in path:
            s.apply(a)
        self.stats.replayed += len(path)
        return s

    def fail(self, path: tuple[Action, ...], found: list, at: int) -> None:
        if self.only is not None and found[0].invariant != self.only:
            self.stats.other += 1
            return
        if self.best is None or len(path) < len(self.best.actions):
            self.best = Failure(self.profile, self.geometry, path, found[0], at)

    def leaf(self, s: System, path: tuple[Action, ...]) -> None:
        self.stats.leaves += 1
        found = finish(s) or check(s)
        if found:
            self.fail(path, found, END)

    def visit(self, node: _Node, s: System) -> bool:
        """Record the state ``node`` reached; whether it is to be explored."""
        last = node.last if self.bounds.preemptions is not None else None
        key = state_key(s, (node.used, last))
        old = self.seen.get(key)
        if (
            old is not None
            and old[1] <= node.preemptions
            and (not self.bounds.dfs or old[0] <= node.depth)
        ):
            return False
        if old is None:
            self.stats.states += 1
            self.stats.depth = max(self.stats.depth, node.depth)
        self.seen[key] = (
            node.depth if old is None else min(old[0], node.depth),
            node.preemptions if old is None else min(old[1], node.preemptions),
        )
        return True

    def expand(self, node: _Node, frontier: deque[_Node]) -> None:
        b, stats = self.bounds, self.stats
        path = node.path() if node.system is None else None
        s = node.system if node.system is not None else self.replay(path)
        node.system = None
        stats.expanded += 1
        choices = self.scope.actions(s, node.used)
        cut = None
        if not choices:
            cut = "leaf"
        elif any(t.loop_iterations >= b.retries for t in s.tasks()):
            stats.cut_retries += 1
            cut = "retries"
        elif b.depth is not None and node.depth >= b.depth:
            stats.cut_depth += 1
            cut = "depth"
        if cut is not None:
            self.leaf(s, path or node.path())
            return
        t = None if node.last is None else s.cpus[node.last].task
        could_step = t is not None and t.runnable(s)
        limited = self.scope.limited
        fresh = True
        for a, spec in choices:
            pre = node.preemptions + (could_step and a.cpu != node.last)
            if b.preemptions is not None and pre > b.preemptions:
                stats.cut_preemptions += 1
                continue
            if not fresh:
                path = path or node.path()
                s = self.replay(path)
            fresh = False
            s.apply(a)
            stats.transitions += 1
            found = check(s)
            if found:
                self.fail((*node.path(), a), found, node.depth)
                continue
            used = node.used
            if spec is not None and spec in limited:
                k = limited.index(spec)
                used = (*used[:k], used[k] + 1, *used[k + 1 :])
            child = _Node(node, a, node.depth + 1, pre, a.cpu, used)
            if self.visit(child, s):
                if len(frontier) < LIVE_CAP:
                    child.system = s
                frontier.append(child)

    def limit(self) -> str | None:
        b = self.bounds
        if b.max_states is not None and self.stats.states >= b.max_states:
            return f"--max-states {b.max_states}"
        if b.seconds is not None and time.perf_counter() - self.began >= b.seconds:
            return f"--time {b.seconds:g}"
        return None

    def tick(self, frontier: deque[_Node]) -> None:
        now = time.perf_counter()
        self.stats.seconds = now - self.began
        self.stats.frontier = len(frontier)
        if self.progress is not None and now - self.reported >= PROGRESS_SECONDS:
            self.reported = now
            self.progress(self.stats)

    def run(self) -> Proof:
        root = _Node(None, None, 0, 0, None, (0,) * len(self.scope.limited))
        self.visit(root, System(self.profile, self.geometry))
        frontier = deque([root])
        stopped = None
        while frontier:
            self.tick(frontier)
            node = frontier.pop() if self.bounds.dfs else frontier.popleft()
            if self.best is not None and (self.bounds.dfs or node.depth >= len(self.best.actions)):
                break
            stopped = self.limit()
            if stopped:
                frontier.append(node)
                break
            self.expand(node, frontier)
        self.tick(frontier)
        if self.best is not None:
            return Proof("violation", self.stats, self.best)
        if stopped:
            return Proof("limit", self.stats, limit=stopped)
        return Proof("proved", self.stats)


def prove(
    profile: Profile,
    geometry: Geometry,
    scope: Scope,
    bounds: Bounds = Bounds(),
    progress: Callable[[Stats], None] | None = None,
    only: str | None = None,
) -> Proof:
    """Explore every schedule of ``scope`` on ``profile``/``geometry`` within ``bounds``; with
    ``only``, search for a violation of that invariant (a state that breaks another one first is
    not explored further, and "proved" means: ``only`` cannot be broken first)."""
    return _Search(profile, geometry, scope, bounds, progress, only).run()
