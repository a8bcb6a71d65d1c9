"""Choosing the next action for the native engines: kind first, then CPU, operation, arguments.

Choosing uniformly among ``System.enabled()`` would let the large argument pools (every pfn of
the pool, every allocation order and type) drown the rare actions that races need (a signal, a
drain work item, an offline). The chooser draws an action *kind* first, then a CPU, then, for a
``Start``, an operation and its arguments, and it builds only the arguments of the operation it
drew. Its support is exactly ``System.enabled()`` restricted to the episode's swarm (a test
checks this).
"""

from __future__ import annotations

import random

import attrs

from pcpfuzz.actions import Action, CpuDown, CpuUp, Run, RunWork, Signal, Start, Step
from pcpfuzz.ops import OPS
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System

KINDS = ("start", "step", "run", "work", "signal", "cpu")
"""Action kinds, in the order the chooser lists them. ``cpu`` is CPU hotplug (down or up)."""
SWARM_KINDS = ("signal", "cpu")
"""Kinds a swarm may switch off for an episode; the others are always on, or tasks would
never progress."""


@attrs.frozen
class Swarm:
    """The operations and action kinds switched on for one episode (swarm testing: leaving some
    out lets the rest run longer and deeper)."""

    ops: tuple[str, ...]
    kinds: frozenset[str]


def full_swarm(profile: Profile) -> Swarm:
    """Every operation of ``profile`` and every kind."""
    return Swarm(tuple(n for n, op in OPS.items() if op.available(profile)), frozenset(KINDS))


def draw_swarm(rng: random.Random, profile: Profile) -> Swarm:
    """A random swarm: each operation and each optional kind on with probability 1/2; at least
    one operation stays on."""
    ops = full_swarm(profile).ops
    chosen = tuple(n for n in ops if rng.random() < 0.5) or (rng.choice(ops),)
    kinds = {k for k in KINDS if k not in SWARM_KINDS or rng.random() < 0.5}
    return Swarm(chosen, frozenset(kinds))


def _pick(rng: random.Random, seq: list):
    """A uniform element of non-empty ``seq`` (``rng.random`` is several times cheaper than
    ``rng.choice``)."""
    return seq[int(rng.random() * len(seq))]


def choose_start(s: System, rng: random.Random, cpu: int, ops: tuple[str, ...]) -> Start | None:
    """A ``Start`` on idle ``cpu``: an operation drawn uniformly among ``ops`` that have enabled
    arguments, then its arguments uniformly; None when no operation has any. (No operation's
    arguments depend on the CPU that starts it.)"""
    left = list(ops)
    while left:
        name = left.pop(int(rng.random() * len(left)))
        args = OPS[name].args(s)
        if args:
            return Start(cpu, name, _pick(rng, args))
    return None


def cpu_groups(s: System, kinds: frozenset[str]) -> dict[str, list[int]]:
    """For each kind in ``kinds`` with an enabled action, the CPUs it is enabled on (for
    ``start``: the idle online CPUs; whether an operation has arguments is decided later)."""
    start: list[int] = []
    runnable: list[int] = []
    work: list[int] = []
    signal: list[int] = []
    hotplug: list[int] = []
    hotplug_free = s.mem_hotplug_lock.owner is None
    several_online = sum(c.online for c in s.cpus) > 1
    for i, c in enumerate(s.cpus):
        t = c.task
        if t is None:
            if c.online:
                start.append(i)
            if hotplug_free and not c.work_pending and (several_online or not c.online):
                hotplug.append(i)
        else:
            if t.runnable(s):
                runnable.append(i)
            if t.op == "offline_pages" and not t.signal_pending:
                signal.append(i)
        if c.work_pending and c.online and (t is None or not t.irq_off):
            work.append(i)
    found = {
        "start": start,
        "step": runnable,
        "run": runnable,
        "work": work,
        "signal": signal,
        "cpu": hotplug,
    }
    return {k: cpus for k, cpus in found.items() if cpus and k in kinds}


SIMPLE: dict[str, type] = {"step": Step, "run": Run, "work": RunWork, "signal": Signal}


def choose(s: System, rng: random.Random, swarm: Swarm) -> Action | None:
    """A random enabled action within ``swarm``: a kind uniformly among those with an enabled
    action, then a CPU, then (for ``start``) an operation and arguments. None when nothing in
    the swarm is enabled."""
    groups = cpu_groups(s, swarm.kinds)
    while groups:
        kind = _pick(rng, list(groups))
        cpu = _pick(rng, groups[kind])
        if kind == "start":
            action = choose_start(s, rng, cpu, swarm.ops)
            if action is None:
                del groups[kind]
                continue
            return action
        if kind == "cpu":
            return CpuUp(cpu) if not s.cpus[cpu].online else CpuDown(cpu)
        return SIMPLE[kind](cpu)
    return None


def support(s: System, swarm: Swarm) -> set[Action]:
    """Every action ``choose`` can return in this state (for tests and documentation)."""
    out: set[Action] = set()
    for kind, cpus in cpu_groups(s, swarm.kinds).items():
        for cpu in cpus:
            if kind == "start":
                out.update(Start(cpu, n, a) for n in swarm.ops for a in OPS[n].args(s))
            elif kind == "cpu":
                out.add(CpuUp(cpu) if not s.cpus[cpu].online else CpuDown(cpu))
            else:
                out.add(SIMPLE[kind](cpu))
    return out
