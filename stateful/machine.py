"""The Hypothesis state machine over ``System.apply``, parametrised by profile and geometry.

One rule, ``act``, makes one choice, a weighted (kind, CPU) pair (``stateful.kinds``: alloc,
free, free of a page list, drain_local, drain_all, the fraction sysctl, ``alloc_contig_range``,
the hwpoison ``zone_pcp_disable`` user, offline, online, CPU down/up, and the scheduling
choices: step or run a CPU's task, run its drain work, signal an offline), then draws the
arguments of a start among those enabled, and applies the action. A single rule keeps
Hypothesis's per-rule swarm testing from separating the ingredients of a race; choosing among
what is enabled means no example is rejected. Blocks to free come from the ``blocks`` bundle
(``consumes``), whose handles follow migrated blocks. Each example boots with a slow CPU or
none (its task is scheduled 1 time in 8: how the §15.1 window opens) and a swarm of disruptive
kinds left out (``stateful.kinds.SWARM``).

Every invariant is checked after every action; at teardown every task runs to completion
(``pcpfuzz.liveness.finish``, which checks OFFLINE-TERM) and the end state is checked. The
applied actions are kept in ``trace``: a failure replays with ``pcpfuzz.trace.execute``.
"""

from __future__ import annotations

import time
from typing import ClassVar, Protocol

from hypothesis import event, note
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

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
from stateful.handles import HandleTable
from stateful.kinds import (
    CHOICES,
    CPU_ACTIONS,
    START_OPS,
    SWARM,
    ArgsFn,
    all_args,
    but_the_last_block,
    choose,
    interrupts,
    schedule,
    start_op,
)
from strategies.operations import choose_arguments

RACE_WINDOW = "a free was in flight while an isolation or pcp-disable ran"
"""Label of examples where some free had prepared (cached its migratetype) but not committed
while an isolation pass ran, a range was held isolated, or pcplists were disabled."""
ARG_CHOICES = 256
"""Values of a step's argument choice (a multiple of the usual option counts)."""
REPORT_SHRINK_SECONDS = 30.0
"""Time the trace shrinker gets on a failure reported under pytest."""
STALE_HANDLE = "free drew a dead block handle (re-resolved to the newest live block)"


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
    blocks = Bundle("blocks")

    def __init__(self) -> None:
        super().__init__()
        self.system: System | None = None
        self.handles: HandleTable | None = None
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

    def _boot(self, geometry: Geometry, data: st.DataObject) -> None:
        slow = data.draw(st.integers(0, geometry.nr_cpus), "slow CPU + 1 (0: none)")
        self.sched = schedule(geometry.nr_cpus, slow - 1 if slow else None)
        level = data.draw(st.integers(0, 4), "swarm level")
        self.off = frozenset(k for k in SWARM if data.draw(st.integers(0, 3), k) < level)
        self.system = System(self.profile, geometry)
        self.handles = HandleTable(self.system)

    @rule(
        target=blocks,
        choice=st.integers(0, len(CHOICES) - 1),
        arg=st.integers(0, ARG_CHOICES - 1),
        data=st.data(),
    )
    def act(self, choice: int, arg: int, data: st.DataObject) -> object:
        """Apply the enabled action that ``choice`` (a kind and a CPU) and, for a start, ``arg``
        (its arguments) or, for a free, a block drawn from ``blocks`` name; put the blocks
        that entered the pool into ``blocks``. Every step makes the same two choices (a free
        a third), so that Hypothesis's mutations and shrinking keep later steps aligned."""
        s, handles = self.system, self.handles
        assert s is not None and handles is not None
        kind, cpu = choose(choice, s, self.sched, self.allowed, self.off)
        action: Action
        if kind == "free":
            handle = data.draw(consumes(self.blocks), "block")
            if not handles.live(handle):
                self.labels.add(STALE_HANDLE)
            action = Start(cpu, START_OPS[kind], (handles.resolve(handle),))
        elif kind == "irq":
            able = interrupts(s, cpu)
            action = able[arg % len(able)]
        elif kind in START_OPS:
            op = start_op(s, kind)
            action = Start(cpu, op, choose_arguments(op, s, arg, self.allowed(s, op)))
        else:
            action = CPU_ACTIONS[kind](cpu)
        self._apply(action)
        return multiple(*handles.update())

    def _apply(self, action: Action) -> None:
        s = self.system
        assert s is not None
        s.apply(action)
        self.trace.append(action)
        if s.inflight and (s.iso_users or s.isolation_passes or s.pcp_disabled):
            self.labels.add(RACE_WINDOW)

    @invariant()
    def invariants_hold(self) -> None:
        """Every invariant of the profile, after every action."""
        if self.system is None or self.failed:
            return
        found = check(self.system)
        if found:
            self._fail(found[0], len(self.trace) - 1)

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
    boot_with = st.just(geometries) if isinstance(geometries, Geometry) else geometries

    class Machine(PcpMachine):
        @initialize(geometry=boot_with, data=st.data())
        def boot(self, geometry: Geometry, data: st.DataObject) -> None:
            """Boot the model on ``geometry``; draw the slow CPU, if any."""
            self._boot(geometry, data)

    name = "Machine_" + "".join(c if c.isalnum() else "_" for c in profile.name)
    Machine.__name__ = Machine.__qualname__ = name
    Machine.profile = profile
    Machine.observer = observer
    if keep_populated:
        Machine.allowed = staticmethod(but_the_last_block)
    return Machine
