"""The kinds of action the state machine chooses among, their weights, and which are enabled.

A step's one integer names a (kind, CPU) pair and an index into the arguments of a start.
Every kind stays available in every example, so the ingredients of a race (a free, an
isolation, the scheduling that interleaves them) meet in every example; the weights decide
how often. ``Scan`` finds what is enabled in a state lazily, once per step.

A kind is added with one line in ``WEIGHTS`` (its name and weight; ``CHOICES`` and the
machine's integer range follow), provided the kind is a CPU action of
``pcpfuzz.actions.ACTION_TYPES`` (enabled as ``System.why_not`` says) or a start of
``START_OPS``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import lru_cache

from pcpfuzz.actions import ACTION_TYPES, Action, Interrupt, Start
from pcpfuzz.engines.choice import KINDS, cpu_groups
from pcpfuzz.ops import OPS, nested_args
from pcpfuzz.ops import but_the_last_block as _keep_one
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System

START_OPS: dict[str, str] = {
    "alloc": "alloc_pages",
    "free": "free_pages",
    "free_list": "free_unref_page_list",
    "drain_local": "drain_local_pages",
    "drain_all": "drain_all_pages",
    "fraction": "percpu_pagelist_fraction",
    "contig": "alloc_contig_range",
    "pcp_disable": "get_hwpoison_page",
    "offline": "offline_pages",
    "online": "online_pages",
}
"""Kinds that start an operation on an idle CPU, and the operation (``pcpfuzz.ops``)."""
PROFILE_OPS: dict[str, tuple[str, ...]] = {
    "fraction": ("percpu_pagelist_fraction", "percpu_pagelist_high_fraction"),
}
"""Kinds whose operation depends on the profile: the first one it has (v6.1 writes
``percpu_pagelist_high_fraction``)."""


def start_op(s: System, kind: str) -> str:
    """The operation start kind ``kind`` runs on ``s``'s profile."""
    return profile_start_ops(s.profile)[kind] or START_OPS[kind]


def profile_start_ops(profile: Profile) -> dict[str, str | None]:
    """Each start kind's operation on ``profile``: the first of its ``PROFILE_OPS`` and its
    ``START_OPS`` one that the profile has, None when it has none; computed once per profile
    object."""
    hit = _PROFILE_START_OPS.get(id(profile))
    if hit is None or hit[0] is not profile:
        ops: dict[str, str | None] = {}
        for kind in START_OPS:
            names = (*PROFILE_OPS.get(kind, ()), START_OPS[kind])
            ops[kind] = next((n for n in names if OPS[n].available(profile)), None)
        hit = _PROFILE_START_OPS[id(profile)] = (profile, ops)
    return hit[1]


_PROFILE_START_OPS: dict[int, tuple[Profile, dict[str, str | None]]] = {}


CPU_ACTIONS: dict[str, type[Action]] = {
    k: c for k, c in ACTION_TYPES.items() if c not in (Start, Interrupt)
}
"""Kinds that act on one CPU: the scheduling choices, signals and CPU hotplug."""

WEIGHTS: dict[str, int] = {
    "run": 5,
    "step": 3,
    "work": 3,
    "alloc": 3,
    "free": 4,
    "free_list": 1,
    "offline": 3,
    "contig": 1,
    "pcp_disable": 1,
    "online": 2,
    "drain_local": 1,
    "drain_all": 1,
    "fraction": 1,
    "signal": 1,
    "cpu_down": 1,
    "cpu_up": 1,
    "irq": 2,
}
"""Relative weights (they sum to 34). Scheduling dominates, as each operation needs several
steps; the race's ingredients (alloc, free, offline) come next. The order is the shrinking
order: a shrunk example prefers kinds listed first. ``irq`` (an ``Interrupt`` of a busy CPU)
is enabled only on the profiles that model interrupts (v6.1, v6.12)."""

WEIGHTED_KINDS: tuple[str, ...] = tuple(k for k, w in WEIGHTS.items() for _ in range(w))
CPU_SLOTS = 8
"""CPU slots per kind in a choice (32 x 8 = 256 choices).
A slot names CPU ``slot % nr_cpus``, or for scheduling kinds goes through the example's
``schedule``; a CPU no slot names is reached when the chosen pair cannot act (``pick_choice``)."""
CHOICES: tuple[tuple[str, int], ...] = tuple(
    (kind, slot) for kind in WEIGHTED_KINDS for slot in range(CPU_SLOTS)
)
"""Every (kind, CPU slot) pair a step can choose, each kind repeated by its weight."""
SWARM: tuple[str, ...] = ("signal", "cpu_down", "cpu_up", "drain_local", "drain_all", "free_list")
"""Kinds an example may leave out (swarm testing; the machine draws a level 0-4 and leaves
each out with probability level/4). They end or clean up what races build (a signal ends an
offline, a CPU going down or a drain empties pcplists); examples without them let a race
build up. The ingredients of the races (alloc, free, isolation and pcp-disable users,
hotplug, scheduling) are never left out. Measured on v5.10 (examples in which an order-0
free that cached MOVABLE is in flight in a range offline holds isolated): 1.0% without a
swarm, 1.4% over the signal and CPU hotplug only, 2.5% over these six."""
SCHEDULING = frozenset(("step", "run"))
"""Kinds that advance a CPU's task: the ones a slow CPU gets fewer of."""
PASSING = frozenset((*SCHEDULING, "work"))
"""The kinds by which time passes: what a choice that cannot act becomes."""
PASSING_KINDS = tuple(k for k in WEIGHTED_KINDS if k in PASSING)
"""``PASSING``, weighted."""


def schedule(nr_cpus: int, slow: int | None) -> tuple[int, ...]:
    """The CPU of each slot for scheduling kinds: round robin, or, with a ``slow`` CPU, one
    slot for it and the others round robin over the other CPUs (a task that is slow or
    preempted is how the races of spec §15.1 open)."""
    if slow is None or nr_cpus < 2:
        return tuple(slot % nr_cpus for slot in range(CPU_SLOTS))
    others = [c for c in range(nr_cpus) if c != slow]
    return (slow, *(others[i % len(others)] for i in range(CPU_SLOTS - 1)))


ArgsFn = Callable[[System, str], list[tuple[int, ...]]]
"""The arguments a driver may give an operation in a state (at most ``op.args``)."""


def all_args(s: System, op: str) -> list[tuple[int, ...]]:
    """Every argument tuple ``s`` enables for ``op``."""
    return OPS[op].args(s)


def but_the_last_block(s: System, op: str) -> list[tuple[int, ...]]:
    """``all_args``, except that offline never takes the zone's last online block: the zone
    stays populated (see ``stateful.machine.machine_for``)."""
    args = OPS[op].args(s)
    return _keep_one(s, args) if op == "offline_pages" else args


GROUPED: dict[str, str] = {"step": "step", "run": "run", "work": "work", "signal": "signal"}
"""CPU-action kinds whose CPUs ``pcpfuzz.engines.choice.cpu_groups`` lists in its one pass over
the CPUs (under its own kind names); CPU hotplug comes from its ``cpu`` group, split by whether
the CPU is online. Any other CPU-action kind asks ``System.why_not`` for each CPU."""
HOTPLUG = {"cpu_down": True, "cpu_up": False}
"""The CPU hotplug kinds, by whether the CPU they take is online."""
GROUP_KINDS = frozenset(KINDS)
"""Every group ``cpu_groups`` can list."""


class Scan:
    """What is enabled in one state, each part computed when first asked and kept: the CPU
    groups (one pass over the CPUs), each operation's enabled arguments (``args``). A step
    makes one ``Scan``; the state must not change while it is used."""

    def __init__(self, s: System, args: ArgsFn = all_args) -> None:
        self.s = s
        self.args_fn = args
        self._groups: dict[str, list[int]] | None = None
        self._args: dict[str, list[tuple[int, ...]]] = {}
        self._ops = profile_start_ops(s.profile)

    def groups(self) -> dict[str, list[int]]:
        """``cpu_groups`` of every kind."""
        if self._groups is None:
            self._groups = cpu_groups(self.s, GROUP_KINDS)
        return self._groups

    def op_args(self, op: str) -> list[tuple[int, ...]]:
        """The arguments the driver may give ``op`` now (``args``)."""
        got = self._args.get(op)
        if got is None:
            got = self._args[op] = self.args_fn(self.s, op)
        return got

    def kind_cpus(self, kind: str) -> list[int]:
        """The CPUs that can take ``kind`` (as ``System.why_not`` decides for CPU actions; a
        start kind needs an idle online CPU and arguments for its operation)."""
        s = self.s
        if kind in GROUPED:
            return self.groups().get(GROUPED[kind], [])
        if kind in HOTPLUG:
            online = HOTPLUG[kind]
            return [i for i in self.groups().get("cpu", ()) if s.cpus[i].online == online]
        if kind == "irq":
            return [i for i in range(len(s.cpus)) if interrupts(s, i)]
        if kind in CPU_ACTIONS:
            action = CPU_ACTIONS[kind]
            return [i for i in range(len(s.cpus)) if s.why_not(action(i)) is None]
        op = self._ops[kind]
        if op is None:
            return []
        idle = self.groups().get("start", [])
        return idle if idle and self.op_args(op) else []

    def enabled(self) -> dict[str, list[int]]:
        """Each kind enabled, with the CPUs that can take it."""
        out: dict[str, list[int]] = {}
        for kind in (*CPU_ACTIONS, *START_OPS, "irq"):
            able = self.kind_cpus(kind)
            if able:
                out[kind] = able
        return out


def kind_cpus(s: System, kind: str, args: ArgsFn = all_args) -> list[int]:
    """``Scan.kind_cpus`` in ``s``."""
    return Scan(s, args).kind_cpus(kind)


def interrupts(s: System, cpu: int) -> list[Interrupt]:
    """Every ``Interrupt`` enabled on ``cpu``, by operation then arguments."""
    return [Interrupt(cpu, n, a) for n in s.nested_ops(cpu) for a in nested_args(s, n)]


def enabled_kinds(s: System, args: ArgsFn = all_args) -> dict[str, list[int]]:
    """Each kind enabled in ``s``, with the CPUs that can take it (``Scan.enabled``)."""
    return Scan(s, args).enabled()


def choose(
    index: int,
    s: System,
    sched: tuple[int, ...],
    args: ArgsFn = all_args,
    off: frozenset[str] = frozenset(),
) -> tuple[str, int]:
    """``choose_in`` a fresh ``Scan`` of ``s``."""
    return choose_in(index, Scan(s, args), sched, off)


def choose_in(
    index: int, scan: Scan, sched: tuple[int, ...], off: frozenset[str] = frozenset()
) -> tuple[str, int]:
    """``pick_choice`` in the scanned state, with the kinds in ``off`` left out (unless nothing
    else can act). Lazily: the chosen kind's CPUs, then those of the kinds by which time
    passes; the full list of enabled kinds only when none of them can act (a test checks the
    equality)."""
    kind, slot = CHOICES[index]
    nr_cpus = len(scan.s.cpus)
    if kind not in off:
        cpus = scan.kind_cpus(kind)
        if cpus:
            cpu = _slot_cpu(kind, slot, nr_cpus, sched)
            return kind, cpu if cpu in cpus else cpus[index % len(cpus)]
    passing = {k: scan.kind_cpus(k) for k in PASSING if k not in off}
    pair = _time_passes(index, passing, nr_cpus, sched)
    if pair is not None:
        return pair
    enabled = scan.enabled()
    if enabled.keys() - off:
        for k in off & enabled.keys():
            del enabled[k]
    return pick_choice(index, enabled, nr_cpus, sched)


def pick_choice(
    index: int, enabled: dict[str, list[int]], nr_cpus: int, sched: tuple[int, ...]
) -> tuple[str, int]:
    """The (kind, CPU) that choice ``index`` names in a state where ``enabled`` kinds can act:

    - ``CHOICES[index]``, its slot naming CPU ``slot % nr_cpus`` (or ``sched[slot]`` for the
      scheduling kinds), when that kind can act on that CPU;
    - else the same kind on one of the CPUs where it can (at ``index`` modulo their number);
    - else, when the kind cannot act at all (every CPU is busy, say), time passes: a step, a
      run or a drain work item, weighted and scheduled as if drawn;
    - else any enabled pair, at ``index`` modulo their number.

    One stable choice (see ``strategies.choice``): a rare kind does not gain the weight of the
    kinds that cannot act, and a slow CPU stays slow."""
    kind, slot = CHOICES[index]
    cpus = enabled.get(kind)
    if cpus:
        cpu = _slot_cpu(kind, slot, nr_cpus, sched)
        return kind, cpu if cpu in cpus else cpus[index % len(cpus)]
    pair = _time_passes(index, enabled, nr_cpus, sched)
    if pair is not None:
        return pair
    pairs = [(k, c) for k in WEIGHTED_KINDS for c in enabled.get(k, ())]
    return pairs[index % len(pairs)]


def _time_passes(
    index: int, enabled: dict[str, list[int]], nr_cpus: int, sched: tuple[int, ...]
) -> tuple[str, int] | None:
    """The step, run or drain work item choice ``index`` names among the ``enabled`` ones,
    weighted and scheduled as if drawn; None when none is enabled."""
    passing = [
        (pair, n) for pair, n in _passing(nr_cpus, sched) if pair[1] in enabled.get(pair[0], ())
    ]
    if not passing:
        return None
    r = index % sum(n for _, n in passing)
    for pair, n in passing:
        if r < n:
            return pair
        r -= n
    raise AssertionError("unreachable: r < the sum of the weights")


@lru_cache(maxsize=64)
def _passing(nr_cpus: int, sched: tuple[int, ...]) -> tuple[tuple[tuple[str, int], int], ...]:
    """Each (kind, CPU) by which time passes, with its weight: kinds by weight, CPUs by slot."""
    weights = Counter(
        (k, _slot_cpu(k, slot, nr_cpus, sched)) for k in PASSING_KINDS for slot in range(CPU_SLOTS)
    )
    return tuple(weights.items())


def _slot_cpu(kind: str, slot: int, nr_cpus: int, sched: tuple[int, ...]) -> int:
    return sched[slot] if kind in SCHEDULING else slot % nr_cpus
