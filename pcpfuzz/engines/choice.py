"""Choosing the next action for the native engines: kind first, then CPU, operation, arguments.

Choosing uniformly among ``System.enabled()`` would let the large argument pools (every pfn of
the pool, every allocation order and type) drown the rare actions that races need (a signal, a
drain work item, an offline). The chooser draws an action *kind* first, then a CPU, then, for a
``Start``, an operation and its arguments, and it builds only the arguments of the operation it
drew. Two heuristics shape the draw, as in swarm testing and in API fuzzers:

- a *swarm* per episode switches some operations (and the optional kinds: signals, CPU
  hotplug) off, so that the others meet more often and no feature always masks another;
- *recency*: with probability ``RECENCY``, an operation that names pages (a free, an offline,
  an online, a contiguous allocation) takes arguments touching a page allocated or freed in
  the last few actions, when it has such arguments. Races live where work on the same pages
  overlaps; uniform arguments rarely make two CPUs meet on one pageblock.

The support of a draw is exactly ``System.enabled()`` restricted to the swarm (a test checks
this), so every drawn action is enabled.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence

import attrs

from pcpfuzz.actions import Action, CpuDown, CpuUp, Interrupt, Run, RunWork, Signal, Start, Step
from pcpfuzz.ops import OPS, interrupts_modelled, nested_args
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System

KINDS = ("start", "step", "run", "work", "signal", "cpu", "irq")
"""Action kinds, in the order the chooser lists them. ``cpu`` is CPU hotplug (down or up);
``irq`` an ``Interrupt`` (a hardirq or the vmstat kworker nested over a busy CPU's task), a
kind only of the profiles that model interrupts (``profile_kinds``)."""
SWARM_KINDS = ("signal", "cpu", "irq")
"""Kinds a swarm may switch off for an episode; the others are always on, or tasks would
never progress. They are the events from outside the scheduler (a signal, CPU hotplug), not a
CPU's next step: what the ``pct`` engine fires at its event points."""
OP_ON = 0.8
"""Probability that a swarm keeps an operation on. Races need three or four operations
together (allocate, free, offline), so most of them stay on."""
KIND_ON = 0.5
"""Probability that a swarm keeps an optional kind (signals, CPU hotplug) on."""
RECENCY = 0.8
"""Probability that an operation naming pages is steered to recently touched pages."""
RECENT = 4
"""How many recently allocated or freed pfns the chooser remembers."""


@attrs.frozen
class Swarm:
    """The operations and action kinds switched on for one episode."""

    ops: tuple[str, ...]
    kinds: frozenset[str]


def profile_kinds(profile: Profile) -> tuple[str, ...]:
    """The kinds of ``profile``: ``KINDS``, without ``irq`` where no interrupt is modelled
    (so a 5.x swarm draws exactly what it drew before interrupts were)."""
    return KINDS if interrupts_modelled(profile) else tuple(k for k in KINDS if k != "irq")


def full_swarm(profile: Profile) -> Swarm:
    """Every operation of ``profile`` and every kind."""
    ops = tuple(n for n, op in OPS.items() if op.available(profile))
    return Swarm(ops, frozenset(profile_kinds(profile)))


def draw_swarm(rng: random.Random, profile: Profile) -> Swarm:
    """A random swarm: each operation on with probability ``OP_ON`` (at least one stays on),
    each optional kind with probability ``KIND_ON``."""
    ops = full_swarm(profile).ops
    chosen = tuple(n for n in ops if rng.random() < OP_ON) or (rng.choice(ops),)
    kinds = {k for k in profile_kinds(profile) if k not in SWARM_KINDS or rng.random() < KIND_ON}
    return Swarm(chosen, frozenset(kinds))


def _pick(rng: random.Random, seq: Sequence):
    """A uniform element of non-empty ``seq`` (``rng.random`` is several times cheaper than
    ``rng.choice``)."""
    return seq[int(rng.random() * len(seq))]


def near(s: System, op: str, args: list[tuple[int, ...]], recent: Sequence[int]) -> list:
    """The argument tuples of ``args`` (of operation ``op``) whose pages meet the pfns
    ``recent``, in order: a free's pfns, the ``alloc_contig_range`` span (the larger of
    MAX_ORDER and a pageblock) from its start, an offline's or online's memory block; none for
    operations that name no pages. Tested against building each tuple's pfn set."""
    if op in ("free_pages", "free_unref_page_list"):
        pfns = set(recent)
        return [a for a in args if not pfns.isdisjoint(a)]
    if op == "alloc_contig_range":
        span = max(s.geo.max_order_nr_pages, s.geo.pageblock_nr_pages)
        return [a for a in args if any(a[0] <= p < a[0] + span for p in recent)]
    if op in ("offline_pages", "online_pages"):
        blocks = {p // s.geo.block_pages for p in recent}
        return [a for a in args if a[0] in blocks]
    return []


def cpu_groups(s: System, kinds: frozenset[str]) -> dict[str, list[int]]:
    """For each kind in ``kinds`` with an enabled action, the CPUs it is enabled on (for
    ``start``: the idle online CPUs; whether an operation has arguments is decided later),
    in ``KINDS`` order. One pass over the CPUs; the optional kinds (signals, CPU hotplug)
    and their global conditions are looked at only when ``kinds`` has them."""
    start: list[int] = []
    runnable: list[int] = []
    work: list[int] = []
    signal: list[int] = []
    hotplug: list[int] = []
    irq: list[int] = []
    want_irq = "irq" in kinds and interrupts_modelled(s.profile)
    want_signal = "signal" in kinds
    want_hotplug = "cpu" in kinds and s.mem_hotplug_lock.owner is None
    several_online = want_hotplug and sum(c.online for c in s.cpus) > 1
    for i, c in enumerate(s.cpus):
        t = c.task
        if t is None:
            if c.online:
                start.append(i)
                if c.work_pending:
                    work.append(i)
            if (
                want_hotplug
                and not c.work_pending
                and (several_online or not c.online)
                and s.mm.cpu_hotplug_allowed(s, i)
            ):
                hotplug.append(i)
        else:
            cur = c.running()
            if cur is not None and cur.runnable(s):
                runnable.append(i)
            if want_signal and t.op == "offline_pages" and not t.signal_pending:
                signal.append(i)
            if s.work_runnable(i):
                work.append(i)
            if want_irq and s.nested_ops(i):
                irq.append(i)
    out: dict[str, list[int]] = {}
    for kind, cpus in (
        ("start", start),
        ("step", runnable),
        ("run", runnable),
        ("work", work),
        ("signal", signal),
        ("cpu", hotplug),
        ("irq", irq),
    ):
        if cpus and kind in kinds:
            out[kind] = cpus
    return out


SIMPLE: dict[str, type] = {"step": Step, "run": Run, "work": RunWork, "signal": Signal}


def cpu_kind_action(s: System, kind: str, cpu: int) -> Action:
    """The action of a non-start ``kind`` on ``cpu``: for ``cpu``, up if it is down, else
    down."""
    if kind == "cpu":
        return CpuUp(cpu) if not s.cpus[cpu].online else CpuDown(cpu)
    return SIMPLE[kind](cpu)


class Chooser:
    """One episode's random source, swarm and memory of recently touched pfns."""

    def __init__(self, rng: random.Random, swarm: Swarm) -> None:
        self.rng = rng
        self.swarm = swarm
        self.recent: deque[int] = deque(maxlen=RECENT)

    def start(self, s: System, cpu: int) -> Start | None:
        """A ``Start`` on idle ``cpu``: an operation drawn uniformly among the swarm's that have
        enabled arguments, then its arguments (steered by recency); None when none has any.
        (No operation's arguments depend on the CPU that starts it.)"""
        rng = self.rng
        left = list(self.swarm.ops)
        while left:
            name = left.pop(int(rng.random() * len(left)))
            args = OPS[name].args(s)
            if not args:
                continue
            if self.recent and rng.random() < RECENCY:
                args = near(s, name, args, self.recent) or args
            chosen = _pick(rng, args)
            if name in ("free_pages", "free_unref_page_list"):
                self.recent.extend(chosen)
            return Start(cpu, name, chosen)
        return None

    def interrupt(self, s: System, cpu: int) -> Interrupt | None:
        """An ``Interrupt`` of busy ``cpu``: an operation drawn uniformly among those it may
        start there with enabled arguments, then its arguments (a free steered by recency, as
        in ``start``); None when none has any."""
        rng = self.rng
        left = s.nested_ops(cpu)
        while left:
            name = left.pop(int(rng.random() * len(left)))
            args = nested_args(s, name)
            if not args:
                continue
            if self.recent and rng.random() < RECENCY:
                args = near(s, name, args, self.recent) or args
            chosen = _pick(rng, args)
            if name == "free_pages":
                self.recent.extend(chosen)
            return Interrupt(cpu, name, chosen)
        return None

    def _act(self, s: System, kind: str, cpu: int) -> Action | None:
        """The action of ``kind`` on ``cpu``; None when a start or an interrupt has no
        operation with arguments."""
        if kind == "start":
            return self.start(s, cpu)
        if kind == "irq":
            return self.interrupt(s, cpu)
        return cpu_kind_action(s, kind, cpu)

    def observe(self, s: System) -> None:
        """Remember the pfns the last action allocated."""
        self.recent.extend(pfn for pfn, _order, _tid in s.alloc_log)

    def __call__(self, s: System) -> Action | None:
        """A random enabled action within the swarm: a kind uniformly among those with an
        enabled action, then a CPU, then (for ``start``) an operation and arguments. None when
        nothing in the swarm is enabled."""
        self.observe(s)
        rng = self.rng
        groups = cpu_groups(s, self.swarm.kinds)
        while groups:
            kind = _pick(rng, list(groups))
            cpu = _pick(rng, groups[kind])
            action = self._act(s, kind, cpu)
            if action is None:
                del groups[kind]
                continue
            return action
        return None

    def event(self, s: System) -> Action | None:
        """A random enabled event of the swarm (``SWARM_KINDS``): a kind, then a CPU; None
        when none is enabled."""
        groups = cpu_groups(s, self.swarm.kinds.intersection(SWARM_KINDS))
        if not groups:
            return None
        kind = _pick(self.rng, list(groups))
        return self._act(s, kind, _pick(self.rng, groups[kind]))


def support(s: System, swarm: Swarm) -> set[Action]:
    """Every action a ``Chooser`` with ``swarm`` can return in this state (for tests)."""
    out: set[Action] = set()
    for kind, cpus in cpu_groups(s, swarm.kinds).items():
        for cpu in cpus:
            if kind == "start":
                out.update(Start(cpu, n, a) for n in swarm.ops for a in OPS[n].args(s))
            elif kind == "irq":
                out.update(
                    Interrupt(cpu, n, a) for n in s.nested_ops(cpu) for a in nested_args(s, n)
                )
            else:
                out.add(cpu_kind_action(s, kind, cpu))
    return out
