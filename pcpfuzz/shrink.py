"""Shrinking a failing trace: delta debugging over its actions, then simplification passes.

Candidates are judged by ``pcpfuzz.shrink_oracle.Oracle``, which replays each one (repairing
what the removal of other actions shifted) and keeps the simplest trace that still breaks the
same invariant, so every pass here only proposes edits: drop actions and whole tasks, replace
``Step`` runs by ``Run``, substitute simpler operations, move tasks to other CPUs, retarget
blocks, lower CPUs and arguments, and random combinations of these.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable

import attrs

from pcpfuzz.actions import Action, Interrupt, Run, Start, Step
from pcpfuzz.engines.base import Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.ops import OPS
from pcpfuzz.shrink_oracle import Candidate, Oracle, closest_args
from pcpfuzz.system import System
from pcpfuzz.trace import execute

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
PAIRS_UP_TO = 14
"""The longest trace on which every pair of structural edits is tried."""
MISSES = 80
"""Random edit combinations in a row that fail before the local search gives up."""


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


def _drop_each(o: Oracle) -> None:
    """Try removing each action, then each pair of neighbours, from the end."""
    for width in (1, 2):
        i = len(o.best) - width
        while i >= 0 and not o.expired():
            c = o.candidate()
            o.fails(c[:i] + c[i + width :])
            i = min(i - 1, len(o.best) - width)


def _steps_to_runs(o: Oracle) -> None:
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


def _lower_cpus(o: Oracle) -> None:
    """Rename the CPUs (all of a CPU's actions at once), trying each permutation."""
    used = sorted({a.cpu for a in o.best})
    if len(used) > 4:
        return
    for target in itertools.permutations(range(o.geometry.nr_cpus), len(used)):
        mapping = dict(zip(used, target, strict=True))
        if o.improves(tuple((i, attrs.evolve(a, cpu=mapping[a.cpu])) for i, a in o.candidate())):
            return  # the best trace changed: its CPUs are not ``used`` any more


def _prefix_system(o: Oracle, i: int) -> System:
    s = System(o.profile, o.geometry)
    for prev in o.best[:i]:
        s.apply(prev)
    return s


def _stand_ins(o: Oracle, tid: int | None) -> list[int]:
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


def _moves(o: Oracle, cand: Candidate) -> list[Candidate]:
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


def _simpler_ops(o: Oracle) -> None:
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


def _drop_tasks(o: Oracle) -> None:
    """Remove a task with everything that acts on it: its start, its steps and runs, and the
    tasks that free what it allocated (with theirs). Actions on the pages of a task cannot be
    removed one by one without the task, nor the task without them."""
    for tid in dict.fromkeys(a.task for a in o.done if isinstance(a.action, Start | Interrupt)):
        if o.expired():
            return
        gone = {tid}
        pages = {pfn for pfn, _order in o.ref.allocs.get(tid, ())}
        for a in o.done:
            starts = isinstance(a.action, Start | Interrupt)
            if starts and pages.intersection(touches_freed(a.action)):
                gone.add(a.task)
        c = o.candidate()
        o.fails(tuple(x for x, a in zip(c, o.done, strict=True) if a.task not in gone))


def touches_freed(a: Start | Interrupt) -> tuple[int, ...]:
    """The pfns a free names."""
    return a.args if a.op in ("free_pages", "free_unref_page_list") else ()


def _smaller_args(o: Oracle) -> None:
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


def _edits(o: Oracle) -> list[Edit]:
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


def _edit_pairs(o: Oracle) -> None:
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


def _mutant(o: Oracle, rng: random.Random) -> Candidate:
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


def _local_search(o: Oracle) -> None:
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
    _lower_cpus,
    _smaller_args,
)
"""The cheap systematic passes, run to a fixpoint before the pairs of edits and then the random
local search are tried."""


def shrink(failure: Failure, deadline: float | None = None) -> Failure:
    """The simplest trace found that breaks ``failure``'s invariant: ddmin over the actions
    (cut after the failing one), then passes that drop tasks and actions, replace ``Step`` runs by
    ``Run``, substitute simpler operations, move actions to lower CPUs and lower the arguments;
    when they no longer help, pairs of edits, then random combinations of edits; repeated until
    none helps or the ``time.monotonic()`` ``deadline`` passes."""
    o = Oracle(failure, deadline)
    if not o.start(failure.actions if failure.at < 0 else failure.actions[: failure.at + 1]):
        return failure
    _steps_to_runs(o)
    ddmin(o.candidate(), o.fails)
    while not o.expired():
        before = o.best
        for simplify in PASSES:
            simplify(o)
        if o.best == before:
            _edit_pairs(o)
        if o.best == before:
            _local_search(o)
            if o.best == before:
                break
        ddmin(o.candidate(), o.fails)
    out = execute(o.profile, o.geometry, o.best)
    return Failure(o.profile, o.geometry, o.best, out.violation, out.at)
