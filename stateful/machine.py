"""The Hypothesis state machine over ``System.apply``, parametrised by profile and geometry.

One rule, ``act``, draws one integer per step and decodes it into a weighted (kind, CPU) pair
(``stateful.kinds``: alloc, free, free of a page list, drain_local, drain_all, the fraction
sysctl, ``alloc_contig_range``, the hwpoison ``zone_pcp_disable`` user, offline, online, CPU
down/up, and the scheduling choices: step or run a CPU's task, run its drain work, signal an
offline) and an index into the arguments of a start among those enabled (for a free: the pool's
blocks, newest first), and applies the action. A single rule keeps Hypothesis's per-rule swarm
testing from separating the ingredients of a race; choosing among what is enabled means no
example is rejected. The first step boots the example (geometry, a slow CPU or none, whose task
is scheduled 1 time in 8: how the §15.1 window opens, and a swarm of disruptive kinds left out,
``stateful.kinds.SWARM``) from ``st.data()``.

What Hypothesis costs per step is kept small (``benchmarks/hypothesis_overhead.py``): one
integer draw, no ``@initialize`` rule (Hypothesis builds fresh strategies for it in every
example), no bundle and no ``@invariant`` (every invariant is checked inside the rule, after
the action). At teardown every task runs to completion (``pcpfuzz.liveness.finish``, which
checks OFFLINE-TERM) and the end state is checked. The applied actions are kept in ``trace``:
a failure replays with ``pcpfuzz.trace.execute``.
"""

from __future__ import annotations

import time
from typing import ClassVar, Protocol

from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.stateful import RuleBasedStateMachine, rule

from pcpfuzz.actions import Action, Start
from pcpfuzz.corpus import FoundBy, save_from_env
from pcpfuzz.engines.base import Failure
from pcpfuzz.geometry import DEFAULT_GEOMETRY, Geometry
from pcpfuzz.invariants import check
from pcpfuzz.liveness import finish
from pcpfuzz.profiles import Profile
from pcpfuzz.shrink import shrink
from pcpfuzz.system import System
from pcpfuzz.trace import END
from pcpfuzz.violation import Violation
from stateful.kinds import (
    CHOICES,
    CPU_ACTIONS,
    START_OPS,
    SWARM,
    ArgsFn,
    Scan,
    all_args,
    but_the_last_block,
    choose_in,
    interrupts,
    schedule,
    start_op,
)
from strategies.operations import choose_arguments

RACE_WINDOW = "a free was in flight while an isolation or pcp-disable ran"
"""Label of examples where some free had prepared (cached its migratetype) but not committed
while an isolation pass ran, a range was held isolated, or pcplists were disabled."""
ARG_CHOICES = 256
"""Values of a step's argument index (a multiple of the usual option counts)."""
SWARM_PER_DRAW = 3
"""``SWARM`` kinds per boot integer (two bits each: 0-63)."""
STEP_CHOICES = len(CHOICES) * ARG_CHOICES
"""Values of a step's one integer: ``choice + len(CHOICES) * arg``. Hypothesis draws a wide
integer range mostly small (a fifth below 256, Hypothesis 6.170): the choice, the low part,
stays near uniform; the argument index, the high part, leans to the first options (the hot
range, the newest block, order 0 MOVABLE), as shrinking does."""
REPORT_SHRINK_SECONDS = 30.0
"""Time the trace shrinker gets on a failure reported under pytest."""


def format_actions(actions: tuple[Action, ...], at: int) -> str:
    """Numbered actions and where the violation showed."""
    where = "at rest after the last action" if at == END else f"after action {at}"
    steps = "\n".join(f"  {i:3d}  {a}" for i, a in enumerate(actions))
    return f"{where}; the {len(actions)} actions:\n{steps}"


class InvariantViolation(AssertionError):
    """An invariant broken by the machine's trace, after action ``at`` (``END``: at rest);
    ``shrunk`` is the trace ``pcpfuzz.shrink`` made of it, on the run Hypothesis reports."""

    def __init__(
        self,
        violation: Violation,
        at: int,
        actions: tuple[Action, ...],
        shrunk: Failure | None = None,
    ) -> None:
        super().__init__(str(violation))
        self.violation = violation
        self.at = at
        self.actions = actions
        self.shrunk = shrunk

    def __str__(self) -> str:
        text = f"{self.violation}\n{format_actions(self.actions, self.at)}"
        f = self.shrunk
        if f is not None:
            text += f"\nshrunk by pcpfuzz.shrink: {f.violation}\n{format_actions(f.actions, f.at)}"
        return text


class Observer(Protocol):
    """Receives the machine's progress (the ``hypothesis`` engine counts and times with it)."""

    def started(self, machine: PcpMachine) -> None: ...

    def failed(self, machine: PcpMachine, violation: Violation, at: int) -> None: ...

    def ended(self, machine: PcpMachine) -> None: ...


class PcpMachine(RuleBasedStateMachine):
    """The model on one profile; subclasses made by ``machine_for`` add the geometry draw."""

    profile: ClassVar[Profile]
    observer: ClassVar[Observer | None] = None
    allowed: ClassVar[ArgsFn] = staticmethod(all_args)
    boot_with: ClassVar[st.SearchStrategy[tuple]]
    """The boot draw: a geometry; ``5 * slot + level``, the swarm level 0-4 and the slow CPU + 1
    at ``slot`` modulo ``nr_cpus + 1`` (0: none); two bits per ``SWARM`` kind, a value 0-3
    below which level leaves the kind out, packed ``SWARM_PER_DRAW`` to an integer. Few and
    small integers: each costs Hypothesis a draw, and below 256 it draws them uniformly."""

    def __init__(self) -> None:
        super().__init__()
        self.system: System | None = None
        self.trace: list[Action] = []
        self.labels: set[str] = set()
        self.failed = False
        self.sched: tuple[int, ...] = ()
        self.off: frozenset[str] = frozenset()
        if self.observer is not None:
            self.observer.started(self)

    @property
    def geometry(self) -> Geometry:
        assert self.system is not None
        return self.system.geo

    def _boot(self, data: st.DataObject) -> System:
        """Boot the model on a drawn geometry, with a slow CPU or none and a swarm (one draw
        from ``st.data()``, ``boot_with``)."""
        geometry, config, *packs = data.draw(self.boot_with, "geometry, slow CPU, swarm")
        nr_cpus = geometry.nr_cpus
        slot, level = divmod(config, 5)
        slow = slot % (nr_cpus + 1)
        self.sched = schedule(nr_cpus, slow - 1 if slow else None)
        values = [pack >> 2 * i & 3 for pack in packs for i in range(SWARM_PER_DRAW)]
        self.off = frozenset(k for k, x in zip(SWARM, values, strict=False) if x < level)
        self.system = System(self.profile, geometry)
        return self.system

    @rule(step=st.integers(0, STEP_CHOICES - 1), data=st.data())
    def act(self, step: int, data: st.DataObject) -> None:
        """Apply the enabled action that ``step`` names: ``step % len(CHOICES)`` a kind and a
        CPU, and, for a start, ``step // len(CHOICES)`` its arguments; check every invariant.
        Every step makes this one choice (the first also boots), so that Hypothesis's
        mutations and shrinking keep later steps aligned."""
        s = self.system or self._boot(data)
        choice, arg = step % len(CHOICES), step // len(CHOICES)
        scan = Scan(s, self.allowed)
        kind, cpu = choose_in(choice, scan, self.sched, self.off)
        action: Action
        if kind == "irq":
            able = interrupts(s, cpu)
            action = able[arg % len(able)]
        elif kind in START_OPS:
            op = start_op(s, kind)
            action = Start(cpu, op, choose_arguments(op, s, arg, scan.op_args(op)))
        else:
            action = CPU_ACTIONS[kind](cpu)
        self._apply(action)
        found = check(s)
        if found:
            self._fail(found[0], len(self.trace) - 1)

    def _apply(self, action: Action) -> None:
        s = self.system
        assert s is not None
        s.apply(action)
        self.trace.append(action)
        if s.inflight and (s.iso_users or s.isolation_passes or s.pcp_disabled):
            self.labels.add(RACE_WINDOW)

    def teardown(self) -> None:
        """Bring the system to rest (OFFLINE-TERM, DEADLOCK) and check the end state; label
        the behaviours the example exercised."""
        s = self.system
        try:
            if s is None:
                return
            found = [] if self.failed else finish(s) or check(s)
            for label in sorted(self.labels | set(s.events)):
                event(label)
            if found:
                self._fail(found[0], END)
        finally:
            if self.observer is not None:
                self.observer.ended(self)

    def _fail(self, violation: Violation, at: int) -> None:
        self.failed = True
        actions = tuple(self.trace)
        shrunk = None
        if self.observer is not None:
            self.observer.failed(self, violation, at)
        elif current_build_context().is_final:
            shrunk = self._report(Failure(self.profile, self.geometry, actions, violation, at))
        raise InvariantViolation(violation, at, actions, shrunk)

    def _report(self, failure: Failure) -> Failure:
        """The failing run Hypothesis reports (under pytest): shrink it further with the trace
        shrinker, which repairs the references that Hypothesis's deletions break, and save it
        to ``$PCPFUZZ_CORPUS`` when that is set."""
        shrunk = shrink(failure, deadline=time.monotonic() + REPORT_SHRINK_SECONDS)
        path = save_from_env(shrunk, FoundBy("hypothesis"))
        if path is not None:
            note(f"saved to {path}")
        return shrunk


def machine_for(
    profile: Profile,
    geometries: st.SearchStrategy[Geometry] | Geometry = DEFAULT_GEOMETRY,
    observer: Observer | None = None,
    *,
    keep_populated: bool = False,
) -> type[PcpMachine]:
    """A state machine class for ``profile`` whose examples boot ``geometries`` (a geometry,
    or a strategy to draw one from); ``observer`` watches every example.

    ``keep_populated``: offline never takes the zone's last online block. Emptying the zone
    frees its pagesets (``zone_pcp_reset``) under any CPU still using a pageset pointer it read
    earlier: an allocation IRQ-off before its refill, the fraction sysctl between its stores.
    That is a use-after-free on every 5.x kernel (PCP-UAF; with an online in between, lost
    pages), so the property tests keep the zone populated to test the rest;
    ``tests/test_stateful.py`` has the zone-reset traces."""

    class Machine(PcpMachine):
        pass

    name = "Machine_" + "".join(c if c.isalnum() else "_" for c in profile.name)
    Machine.__name__ = Machine.__qualname__ = name
    Machine.profile = profile
    Machine.observer = observer
    geos = st.just(geometries) if isinstance(geometries, Geometry) else geometries
    packs = (st.integers(0, 4**SWARM_PER_DRAW - 1) for _ in range(0, len(SWARM), SWARM_PER_DRAW))
    Machine.boot_with = st.tuples(geos, st.integers(0, 254), *packs)
    if keep_populated:
        Machine.allowed = staticmethod(but_the_last_block)
    return Machine
