"""Shrinking a failing trace: delta debugging over its actions, then simplification passes.

A candidate is replayed on a fresh system that checks every invariant after each action, as
``pcpfuzz.trace.execute`` does. Removing an action shifts what later ones refer to (the page an
allocation returns, and so the pfn a later free names or the block an offline takes), so the
replay *repairs* a candidate as it goes:

- it tracks pages: when an action of the candidate allocates, the blocks it gets are matched
  with those the same action got in the trace being shrunk, and later pfn and block arguments
  are translated through that match;
- a ``Start`` whose arguments are still not enabled takes the enabled arguments of the same
  operation closest to them, and any other action that is not enabled is skipped.

What is kept is the trace that was actually applied, when it breaks the same invariant and is
simpler (shorter, or as long with lower CPUs, simpler operations and smaller arguments, so
shrinking terminates). Every kept trace is thus enabled action by action and replays with
``execute`` to the same invariant.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Callable, Sequence

import attrs

from pcpfuzz.actions import ACTION_KIND, Action, Run, Start, Step
from pcpfuzz.engines.base import Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import INVARIANTS, check
from pcpfuzz.liveness import finish
from pcpfuzz.ops import OPS
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System
from pcpfuzz.trace import END, execute
from pcpfuzz.violation import Violation

Trace = tuple[Action, ...]
Candidate = tuple[tuple[int, Action], ...]
"""Actions with the index of the action of the best trace they come from (-1: none)."""
KIND_RANK = {kind: i for i, kind in enumerate(("start", "run", "step", "work", "signal"))}
OP_RANK = {name: i for i, name in enumerate(OPS)}
SUBSTITUTES = 2
"""How many argument tuples of each simpler operation the substitution pass tries."""
SIMPLER = {
    "alloc_contig_range": "alloc_pages",
    "free_unref_page_list": "free_pages",
    "drain_all_pages": "drain_local_pages",
}
"""The simpler form of an operation, which the substitution pass tries in its place."""
ROTATIONS = 4
"""How many of a substituted task's blocks its new first block may stand for."""
PAIRS_UP_TO = 12
"""The longest trace on which every pair of structural edits is tried."""
MISSES = 80
"""Random edit combinations in a row that fail before the local search gives up."""


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


def translate(s: System, action: Start, pages: dict[int, int], lost: set[int]) -> Start | None:
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
    return action if (op, args) == (action.op, action.args) else Start(action.cpu, op, args)


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
class _Reference:
    """What the best trace's actions did: the task each started or stepped, and the blocks
    each task allocated, in order."""

    tasks: tuple[int | None, ...]
    allocs: dict[int, list[tuple[int, int]]]

    @staticmethod
    def of(applied: Sequence[Applied]) -> _Reference:
        allocs: dict[int, list[tuple[int, int]]] = {}
        for a in applied:
            for pfn, order, tid in a.allocs:
                allocs.setdefault(tid, []).append((pfn, order))
        return _Reference(tuple(a.task for a in applied), allocs)


class _Replay(System):
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
        ref: _Reference,
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
        if isinstance(action, Start):
            action = translate(self, action, self.pages, self._lost())
        fixed = None if action is None else repair(self, action)
        if fixed is None:
            return
        task = self.cpus[fixed.cpu].task
        tid = self._next_tid if isinstance(fixed, Start) else task and task.tid
        super().apply(fixed)
        old = self.ref.tasks[origin] if origin >= 0 else None
        if isinstance(fixed, Start) and old is not None:
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


Rotation = dict[int, int]
"""Origin -> how far to shift the pairing of its task's allocations (see ``_Replay``)."""


class _Oracle:
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
        self.ref = _Reference((), {})
        self.seen: dict[tuple, Candidate | None] = {}
        self.replays = 0

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def candidate(self) -> Candidate:
        """The best trace, as a candidate."""
        return tuple(enumerate(self.best))

    def _replay(self, candidate: Candidate, rotate: Rotation) -> _Replay | None:
        """The replay of ``candidate``, if it breaks the target invariant first. When the
        failure showed during the actions, a candidate must fail during its actions too, and is
        not brought to rest (``finish`` costs more than the actions).

        Most candidates do not fail, so each is first replayed checking the target invariant
        alone (the model's state does not depend on the checks); only one that breaks it is
        replayed again with every check, to confirm that nothing else broke first."""
        self.replays += 1
        origins = [i for i, _ in candidate]
        actions = [a for _, a in candidate]
        if not self._may_fail(
            _Replay(self.profile, self.geometry, origins, self.ref, rotate), actions
        ):
            return None
        s = _Replay(self.profile, self.geometry, origins, self.ref, rotate)
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

    def _may_fail(self, s: _Replay, actions: Sequence[Action]) -> bool:
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

    def _adopt(self, s: _Replay) -> None:
        self.violation = s.violation
        self.best = tuple(a.action for a in s.applied)
        self.done = tuple(s.applied)
        self.ref = _Reference.of(s.applied)
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


def ddmin(items: tuple, fails: Callable[[tuple], tuple | None]) -> tuple:
    """Zeller's delta debugging: a 1-minimal failing sub-sequence of ``items``. ``fails``
    returns the failing sequence to continue from (the candidate or a repaired one), or None.
    Only complements are tried: a trace's failure needs its setup, so a chunk alone almost
    never fails, and 1-minimality needs only the complements."""
    n = 2
    while len(items) >= 2:
        size = -(-len(items) // n)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        for i in range(len(chunks)):
            kept = fails(tuple(itertools.chain.from_iterable(chunks[:i] + chunks[i + 1 :])))
            if kept is not None:
                items, n = kept, max(n - 1, 2)
                break
        else:
            if n >= len(items):
                break
            n = min(2 * n, len(items))
    return items


def _drop_each(o: _Oracle) -> None:
    """Try removing each action, then each pair of neighbours, from the end."""
    for width in (1, 2):
        i = len(o.best) - width
        while i >= 0 and not o.expired():
            c = o.candidate()
            o.fails(c[:i] + c[i + width :])
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
        c = o.candidate()
        if o.best[start : start + n] == (Step(cpu),) * n:
            o.fails(c[:start] + ((start, Run(cpu)),) + c[start + n :])


def _lower_cpus(o: _Oracle) -> None:
    """Rename the CPUs (all of a CPU's actions at once), trying each permutation."""
    used = sorted({a.cpu for a in o.best})
    if len(used) > 4:
        return
    for target in itertools.permutations(range(o.geometry.nr_cpus), len(used)):
        mapping = dict(zip(used, target, strict=True))
        o.fails(tuple((i, attrs.evolve(a, cpu=mapping[a.cpu])) for i, a in o.candidate()))


def _prefix_system(o: _Oracle, i: int) -> System:
    s = System(o.profile, o.geometry)
    for prev in o.best[:i]:
        s.apply(prev)
    return s


def _stand_ins(o: _Oracle, tid: int | None) -> list[int]:
    """Indexes into the blocks task ``tid`` allocated, for its replacement's first block to
    stand for: those the violation names first, then those freed latest (a race is usually
    on the last page freed); the first ``ROTATIONS``."""
    blocks = [pfn for pfn, _order in o.ref.allocs.get(tid, ())] if tid is not None else []
    named = {int(n) for n in re.findall(r"pfn (\d+)", o.violation.message)}
    when = {pfn: -1 for pfn in blocks}
    for i, a in enumerate(o.best):
        if isinstance(a, Start):
            for pfn in touches_freed(a):
                if pfn in when:
                    when[pfn] = i
    order = sorted(range(len(blocks)), key=lambda k: (blocks[k] not in named, -when[blocks[k]]))
    return order[:ROTATIONS] or [0]


def _moves(o: _Oracle, cand: Candidate) -> list[Candidate]:
    """``cand`` with one task (its start, steps and runs) moved to another CPU, for every task
    and CPU."""
    out = []
    for tid in dict.fromkeys(a.task for a in o.done if isinstance(a.action, Start)):
        idx = {i for i, a in enumerate(o.done) if a.task == tid}
        cpu = o.best[min(idx)].cpu
        for other in range(o.geometry.nr_cpus):
            if other != cpu:
                moved = tuple(
                    (j, attrs.evolve(a, cpu=other)) if j in idx else (j, a) for j, a in cand
                )
                out.append(moved)
    return out


def _simpler_ops(o: _Oracle) -> None:
    """Replace each ``Start`` of an operation that has a simpler form (``SIMPLER``) by that
    form, with the few enabled arguments closest to the original ones. When the original task
    allocated several blocks, the new task's first block may stand for some of them
    (``_stand_ins``); and as the simpler form leaves other per-CPU state behind, it is also
    tried with one task moved to another CPU."""
    i = 0
    while i < len(o.best) and not o.expired():
        a = o.best[i]
        if isinstance(a, Start) and a.op in SIMPLER:
            name = SIMPLER[a.op]
            shifts = _stand_ins(o, o.ref.tasks[i])
            for args in closest_args(OPS[name].args(_prefix_system(o, i)), a.args)[:SUBSTITUTES]:
                c = o.candidate()
                cand = c[:i] + ((i, Start(a.cpu, name, args)),) + c[i + 1 :]
                variants = [cand, *_moves(o, cand)]
                if any(o.improves(v, {i: k}) for k in shifts for v in variants):
                    break
        i += 1


def _drop_tasks(o: _Oracle) -> None:
    """Remove a task with everything that acts on it: its start, its steps and runs, and the
    tasks that free what it allocated (with theirs). Actions on the pages of a task cannot be
    removed one by one without the task, nor the task without them."""
    for tid in dict.fromkeys(a.task for a in o.done if isinstance(a.action, Start)):
        if o.expired():
            return
        gone = {tid}
        pages = {pfn for pfn, _order in o.ref.allocs.get(tid, ())}
        for a in o.done:
            if isinstance(a.action, Start) and pages.intersection(touches_freed(a.action)):
                gone.add(a.task)
        c = o.candidate()
        o.fails(tuple(x for x, a in zip(c, o.done, strict=True) if a.task not in gone))


def touches_freed(a: Start) -> tuple[int, ...]:
    """The pfns a free names."""
    return a.args if a.op in ("free_pages", "free_unref_page_list") else ()


def _smaller_args(o: _Oracle) -> None:
    """For each ``Start``, try the enabled arguments of its operation that are smaller."""
    i = 0
    while i < len(o.best) and not o.expired():
        a = o.best[i]
        if isinstance(a, Start):
            for args in sorted(OPS[a.op].args(_prefix_system(o, i))):
                c = o.candidate()
                if args >= a.args or o.improves(
                    c[:i] + ((i, Start(a.cpu, a.op, args)),) + c[i + 1 :]
                ):
                    break
        i += 1


Edit = Callable[[list[tuple[int, Action]]], list[tuple[int, Action]]]


def _edits(o: _Oracle) -> list[Edit]:
    """The structural edits of the best trace: drop a task (its start, steps and runs), drop an
    action, start something else in its place (``_alternatives``), move a task to another CPU.
    Each maps a candidate (a list of (origin, action)) to
    another; they compose."""
    tasks = list(dict.fromkeys(a.task for a in o.done if a.task is not None))
    task_of = [a.task for a in o.done]
    out: list[Edit] = []
    for tid in tasks:
        out.append(lambda c, tid=tid: [x for x in c if task_of[x[0]] != tid])
    for i in range(len(o.best)):
        out.append(lambda c, i=i: [x for x in c if x[0] != i])
    for i, a in enumerate(o.best):
        if isinstance(a, Start):
            for other in _alternatives(o.geometry, a):
                out.append(lambda c, i=i, other=other: [(j, other if j == i else x) for j, x in c])
    for tid in tasks:
        cpu = next(a.action.cpu for a in o.done if a.task == tid)
        for other in range(o.geometry.nr_cpus):
            if other != cpu:
                out.append(
                    lambda c, tid=tid, other=other: [
                        (j, attrs.evolve(a, cpu=other)) if task_of[j] == tid else (j, a)
                        for j, a in c
                    ]
                )
    return out


def _alternatives(geometry: Geometry, a: Start) -> list[Start]:
    """Other starts to try in place of ``a``: an offline, online or contiguous allocation of
    another block; a single free of one page of a freed list."""
    if a.op in ("offline_pages", "online_pages"):
        return [Start(a.cpu, a.op, (b,)) for b in range(geometry.nr_blocks) if (b,) != a.args]
    if a.op == "alloc_contig_range":
        align = max(geometry.max_order_nr_pages, geometry.pageblock_nr_pages)
        starts = range(0, geometry.nr_pages, align)
        return [Start(a.cpu, a.op, (pfn,)) for pfn in starts if (pfn,) != a.args]
    if a.op == "free_unref_page_list":
        return [Start(a.cpu, "free_pages", (pfn,)) for pfn in a.args]
    return []


def _edit_pairs(o: _Oracle) -> None:
    """Every pair of structural edits, on traces short enough (``PAIRS_UP_TO``): a shorter race
    often needs a task on the other CPU and another task gone at once, which no single edit
    gives."""
    if len(o.best) > PAIRS_UP_TO:
        return
    edits = _edits(o)
    best = o.best
    for i, first in enumerate(edits):
        for second in edits[i + 1 :]:
            if o.expired() or o.best is not best:
                return
            o.improves(tuple(second(first(list(o.candidate())))))


def _mutant(o: _Oracle, rng: random.Random) -> Candidate:
    """The best trace with one to three random edits: the structural ones, or an action moved
    elsewhere in the trace."""
    edits = _edits(o)
    c = list(o.candidate())
    for _ in range(rng.randint(1, 3)):
        if not c:
            break
        if rng.random() < 0.25:
            c.insert(rng.randrange(len(c)), c.pop(rng.randrange(len(c))))
        else:
            c = rng.choice(edits)(c)
    return tuple(c)


def _local_search(o: _Oracle) -> None:
    """Random combinations of edits, until ``MISSES`` in a row fail."""
    rng = random.Random(len(o.best))
    misses = 0
    while misses < MISSES and not o.expired():
        misses = 0 if o.improves(_mutant(o, rng)) else misses + 1


PASSES = (
    _drop_tasks,
    _drop_each,
    _steps_to_runs,
    _simpler_ops,
    _edit_pairs,
    _lower_cpus,
    _smaller_args,
)
"""The systematic passes, run to a fixpoint before the random local search is tried."""


def shrink(failure: Failure, deadline: float | None = None) -> Failure:
    """The simplest trace found that breaks ``failure``'s invariant: ddmin over the actions
    (cut after the failing one), then passes that drop tasks and actions, replace ``Step`` runs by
    ``Run``, substitute simpler operations, move actions to lower CPUs and lower the
    arguments, then random combinations of edits, repeated until none helps or the
    ``time.monotonic()`` ``deadline`` passes."""
    o = _Oracle(failure, deadline)
    if not o.start(failure.actions if failure.at < 0 else failure.actions[: failure.at + 1]):
        return failure
    _steps_to_runs(o)
    ddmin(o.candidate(), o.fails)
    while not o.expired():
        before = o.best
        for simplify in PASSES:
            simplify(o)
        if o.best == before:
            _local_search(o)
            if o.best == before:
                break
        ddmin(o.candidate(), o.fails)
    out = execute(o.profile, o.geometry, o.best)
    return Failure(o.profile, o.geometry, o.best, out.violation, out.at)
