"""The shrinker's oracle: it replays candidate traces, repairing them as it goes, and keeps the
simplest one that still breaks the target invariant.

Removing an action shifts what later ones refer to (the page an allocation returns, and so the
pfn a later free names or the block an offline takes), so a replay *repairs* a candidate:

- it tracks pages: a task started by an action of the best trace stands for that action's task
  there, the blocks it allocates are paired with the blocks that one allocated, and later pfn
  and block arguments are translated through the pairing;
- a ``Start`` whose arguments are still not enabled takes the enabled arguments of the same
  operation closest to them, and any other action that is not enabled is skipped.

What is kept is the trace that was actually applied, when it breaks the same invariant first
and is simpler (``trace_key``). Every kept trace is thus enabled action by action and replays
with ``pcpfuzz.trace.execute`` to the same invariant.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs

from pcpfuzz.actions import ACTION_KIND, Action, Interrupt, Start
from pcpfuzz.engines.base import Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import INVARIANTS, check
from pcpfuzz.liveness import finish
from pcpfuzz.ops import OPS, nested_args
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System
from pcpfuzz.trace import END, execute
from pcpfuzz.violation import Violation

Trace = tuple[Action, ...]
Candidate = tuple[tuple[int, Action], ...]
"""Actions with the index of the action of the best trace they come from (-1: none)."""
Rotation = dict[int, int]
"""Origin -> how far to shift the pairing of its task's allocations (see ``Replay``)."""
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


def closest_args(options: Sequence[tuple[int, ...]], args: tuple[int, ...]) -> list:
    """``options`` from the closest to ``args`` to the farthest (ties: smaller first)."""
    return sorted(options, key=lambda x: (_distance(x, args), x))


def translate(
    s: System, action: Start | Interrupt, pages: dict[int, int], lost: set[int]
) -> Start | Interrupt | None:
    """``action`` with the pfns it names, and the block it offlines or onlines, moved along
    ``pages`` (old pfn -> new pfn). A free forgets the pages in ``lost`` (their allocation now
    gives fewer blocks and none stands for them): None when none is left, a single free when one
    is."""
    op, args = action.op, action.args
    if op in ("free_pages", "free_unref_page_list"):
        args = tuple(pages.get(p, p) for p in args if p not in lost)
        if not args:
            return None
        if len(args) == 1:
            op = "free_pages"
    elif op in ("offline_pages", "online_pages") and pages:
        start, end = s.geo.block_range(args[0])
        moved = [new for old, new in pages.items() if start <= old < end]
        if moved:
            args = (moved[0] // s.geo.block_pages,)
    return action if (op, args) == (action.op, action.args) else type(action)(action.cpu, op, args)


def repair(s: System, action: Action) -> Action | None:
    """``action`` if it is enabled in ``s``; a ``Start`` on an idle CPU with the closest enabled
    arguments of its operation; else None (skip it)."""
    if s.why_not(action) is None:
        return action
    if isinstance(action, Start) and 0 <= action.cpu < len(s.cpus):
        c = s.cpus[action.cpu]
        op = OPS.get(action.op)
        if c.online and c.task is None and op is not None and op.available(s.profile):
            options = op.args(s)
            if options:
                return Start(action.cpu, action.op, closest_args(options, action.args)[0])
    if isinstance(action, Interrupt) and action.op in s.nested_ops(action.cpu):
        options = nested_args(s, action.op)
        if options:
            return Interrupt(action.cpu, action.op, closest_args(options, action.args)[0])
    return None


@attrs.frozen
class Applied:
    """One action as a replay applied it: where it came from in the best trace (-1: nowhere),
    the task it started or stepped, and the (pfn, order, tid) blocks allocated meanwhile."""

    action: Action
    origin: int
    task: int | None
    allocs: tuple[tuple[int, int, int], ...]


@attrs.frozen
class Reference:
    """What the best trace's actions did: the task each started or stepped, and the blocks
    each task allocated, in order."""

    tasks: tuple[int | None, ...]
    allocs: dict[int, list[tuple[int, int]]]

    @staticmethod
    def of(applied: Sequence[Applied]) -> Reference:
        allocs: dict[int, list[tuple[int, int]]] = {}
        for a in applied:
            for pfn, order, tid in a.allocs:
                allocs.setdefault(tid, []).append((pfn, order))
        return Reference(tuple(a.task for a in applied), allocs)


class Replay(System):
    """A system that replays a candidate: translates, repairs or skips each action, and
    records what it applied. A task started by an action of the best trace stands for that
    action's task there: the k-th block it allocates stands for the k-th block that one
    allocated (``rotate`` shifts the pairing for the tasks started at some origins), and later
    pfn and block arguments are translated accordingly."""

    def __init__(
        self,
        profile: Profile,
        geometry: Geometry,
        origins: Sequence[int],
        ref: Reference,
        rotate: dict[int, int],
    ) -> None:
        super().__init__(profile, geometry)
        self.origins = origins
        self.ref = ref
        self.rotate = rotate
        self.next = 0
        self.pages: dict[int, int] = {}
        self.stands_for: dict[int, tuple[int, int]] = {}
        """New tid -> (tid in the best trace, rotation)."""
        self.matched: dict[int, int] = {}
        self.applied: list[Applied] = []
        self.violation: Violation | None = None

    def apply(self, action: Action) -> None:
        origin = self.origins[self.next]
        self.next += 1
        if isinstance(action, Start | Interrupt):
            action = translate(self, action, self.pages, self._lost())
        fixed = None if action is None else repair(self, action)
        if fixed is None:
            return
        task = self.cpus[fixed.cpu].running()
        starts = isinstance(fixed, Start | Interrupt)
        tid = self._next_tid if starts else task and task.tid
        super().apply(fixed)
        old = self.ref.tasks[origin] if origin >= 0 else None
        if starts and old is not None:
            self.stands_for[tid] = (old, self.rotate.get(origin, 0))
        for pfn, order, by in self.alloc_log:
            self._match(pfn, order, by)
        self.applied.append(Applied(fixed, origin, tid, tuple(self.alloc_log)))

    def _lost(self) -> set[int]:
        """Pfns that tasks of the best trace allocated, now stood for by a task that has not
        allocated a counterpart for them."""
        lost: set[int] = set()
        for old_tid, _rotation in self.stands_for.values():
            lost.update(pfn for pfn, _order in self.ref.allocs.get(old_tid, ()))
        return lost - self.pages.keys()

    def _match(self, pfn: int, order: int, tid: int) -> None:
        if tid not in self.stands_for:
            return
        old_tid, rotation = self.stands_for[tid]
        was = self.ref.allocs.get(old_tid, [])
        k = self.matched.get(tid, 0)
        self.matched[tid] = k + 1
        if k < len(was):
            old, old_order = was[(k + rotation) % len(was)]
            for i in range(1 << min(order, old_order)):
                self.pages[old + i] = pfn + i


class Oracle:
    """Replays candidates, remembers the verdicts and keeps the simplest failing trace (with
    what each of its actions did)."""

    def __init__(self, failure: Failure, deadline: float | None) -> None:
        self.profile = failure.profile
        self.geometry = failure.geometry
        self.invariant = failure.violation.invariant
        self.at_rest = failure.at == END
        self.target = next((i.check for i in INVARIANTS if i.name == self.invariant), None)
        """The target's own check, or None (OFFLINE-TERM: only ``finish`` tells)."""
        self.deadline = deadline
        self.best: Trace = ()
        self.violation = failure.violation
        self.done: tuple[Applied, ...] = ()
        self.ref = Reference((), {})
        self.seen: dict[tuple, Candidate | None] = {}

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def candidate(self) -> Candidate:
        """The best trace, as a candidate."""
        return tuple(enumerate(self.best))

    def _replay(self, candidate: Candidate, rotate: Rotation) -> Replay | None:
        """The replay of ``candidate``, if it breaks the target invariant first. When the
        failure showed during the actions, a candidate must fail during its actions too, and is
        not brought to rest (``finish`` costs more than the actions).

        Most candidates do not fail, so each is first replayed checking the target invariant
        alone (the model's state does not depend on the checks); only one that breaks it is
        replayed again with every check, to confirm that nothing else broke first."""
        origins = [i for i, _ in candidate]
        actions = [a for _, a in candidate]
        if not self._may_fail(
            Replay(self.profile, self.geometry, origins, self.ref, rotate), actions
        ):
            return None
        s = Replay(self.profile, self.geometry, origins, self.ref, rotate)
        if self.at_rest:
            out = execute(self.profile, self.geometry, actions, system=s)
            s.violation = out.violation
            return s if out.invariant == self.invariant else None
        for action in actions:
            s.apply(action)
            found = check(s)
            if found:
                s.violation = found[0]
                return s if found[0].invariant == self.invariant else None
        return None

    def _may_fail(self, s: Replay, actions: Sequence[Action]) -> bool:
        """Whether the target invariant breaks at some point of ``actions`` (or at rest)."""
        if self.target is None:
            return True
        for action in actions:
            s.apply(action)
            if not self.at_rest and self.target(s):
                return True
        if not self.at_rest:
            return False
        found = finish(s) or check(s, full=True)
        return any(v.invariant == self.invariant for v in found)

    def _adopt(self, s: Replay) -> None:
        self.violation = s.violation
        self.best = tuple(a.action for a in s.applied)
        self.done = tuple(s.applied)
        self.ref = Reference.of(s.applied)
        self.seen.clear()

    def start(self, actions: Trace) -> bool:
        """Make ``actions`` the best trace, if it fails as expected."""
        s = self._replay(tuple((-1, a) for a in actions), {})
        if s is not None:
            self._adopt(s)
        return s is not None

    def fails(self, candidate: Candidate, rotate: Rotation | None = None) -> Candidate | None:
        """The trace applied when replaying ``candidate`` (as a candidate), if it breaks the
        same invariant; adopted as the best when it is simpler."""
        key = (candidate, tuple(sorted((rotate or {}).items())))
        if key in self.seen:
            return self.seen[key]
        if self.expired():
            return None
        s = self._replay(candidate, rotate or {})
        if s is None:
            self.seen[key] = None
            return None
        if trace_key([a.action for a in s.applied]) < trace_key(self.best):
            self._adopt(s)
            return self.candidate()
        kept = tuple((a.origin, a.action) for a in s.applied)
        self.seen[key] = kept
        return kept

    def improves(self, candidate: Candidate, rotate: Rotation | None = None) -> bool:
        """Whether ``candidate`` made the best trace simpler."""
        before = self.best
        self.fails(candidate, rotate)
        return self.best is not before
