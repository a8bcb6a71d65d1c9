"""Running the state machine programmatically: seeded, no example database, within a time
budget, with the counts an engine reports (``pcpfuzz.engines.hypothesis_engine``, the
meta-tests and the benchmarks use it).

Hypothesis has no wall-clock budget, so the ``Recorder`` (the machine's observer) ends a run
by raising ``BudgetSpent`` when an example starts after the search budget, or, once a failure
is known, after the shrink budget (seconds, or a number of shrink examples, which keeps a
seeded run deterministic); the shortest failing trace seen so far is then the result.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

import attrs
from hypothesis import Phase, settings, statistics
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test

from pcpfuzz.actions import Action
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.violation import Violation
from stateful.machine import RACE_WINDOW, InvariantViolation, PcpMachine, machine_for
from stateful.settings import PROFILES


class BudgetSpent(BaseException):
    """Ends a Hypothesis run when its time budget is spent (not an ``Exception``, so that
    Hypothesis does not take it for a failure of the test)."""


@attrs.frozen
class Found:
    """A failing trace: ``actions`` break ``violation`` after action ``at`` (-1: at rest)."""

    actions: tuple[Action, ...]
    violation: Violation
    at: int


@attrs.define
class Recorder:
    """The observer of one run: counts the search (examples until the first failure), keeps
    the first and the shortest failing traces, and enforces the budgets."""

    seconds: float
    shrink_seconds: float
    shrink_limit: int | None = None
    progress: Callable[[int, int], None] | None = None
    """Told (examples, model steps) after each example of the search."""
    began: float = attrs.Factory(time.perf_counter)
    examples: int = 0
    model_steps: int = 0
    events: Counter[str] = attrs.Factory(Counter)
    race_windows: int = 0
    first: Found | None = None
    first_at: float | None = None
    best: Found | None = None
    first_machine: PcpMachine | None = None
    stopped: bool = False
    shrink_examples: int = 0

    def started(self, machine: PcpMachine) -> None:
        now = time.perf_counter()
        if self.first_at is None:
            over = now - self.began > self.seconds
        else:
            over = now - self.first_at > self.shrink_seconds or (
                self.shrink_limit is not None and self.shrink_examples >= self.shrink_limit
            )
        if over:
            self.stopped = True
            raise BudgetSpent

    def failed(self, machine: PcpMachine, violation: Violation, at: int) -> None:
        found = Found(tuple(machine.trace), violation, at)
        if self.first is None:
            self.first, self.first_at = found, time.perf_counter()
            self.first_machine = machine
        if self.best is None or len(found.actions) <= len(self.best.actions):
            self.best = found

    def ended(self, machine: PcpMachine) -> None:
        if self.first_machine is not None and machine is not self.first_machine:
            self.shrink_examples += 1
            return
        s = machine.system
        self.examples += 1
        self.model_steps += len(machine.trace)
        if s is not None:
            self.events.update(s.events)
        if RACE_WINDOW in machine.labels:
            self.race_windows += 1
        if self.progress is not None:
            self.progress(self.examples, self.model_steps)


@attrs.frozen
class Run:
    """What a run found, and how long it took."""

    recorder: Recorder
    failure: Found | None
    """Hypothesis's shrunk failure (the shortest seen if the shrink budget ran out)."""
    seconds: float
    statuses: Counter[str] = attrs.Factory(Counter)
    """Generate-phase examples by Hypothesis status (valid, invalid, overrun, interesting),
    from Hypothesis's statistics; empty when a budget ended the run."""

    @property
    def found_after(self) -> float | None:
        r = self.recorder
        return None if r.first_at is None else r.first_at - r.began


def run(
    profile: Profile,
    geometry: Geometry,
    seed: int,
    *,
    max_examples: int,
    steps: int,
    seconds: float = math.inf,
    shrink_seconds: float = math.inf,
    shrink_limit: int | None = None,
    base: str = "ci",
    keep_populated: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Run:
    """Run ``profile``'s state machine on ``geometry`` with Hypothesis seed ``seed``: at most
    ``max_examples`` examples of ``steps`` actions and ``seconds`` of search, then Hypothesis's
    shrinking for at most ``shrink_seconds`` and ``shrink_limit`` examples. Settings derive
    from the ``base`` profile, with no database, a single reported failure, and every phase
    but ``explain``; ``keep_populated`` as in ``machine_for``; ``progress`` is told (examples,
    model steps) after each example of the search."""
    recorder = Recorder(seconds, shrink_seconds, shrink_limit, progress)
    machine = machine_for(profile, geometry, recorder, keep_populated=keep_populated)
    hypothesis_seed(seed)(machine)
    chosen = settings(
        PROFILES[base],
        max_examples=max_examples,
        stateful_step_count=steps,
        database=None,
        derandomize=False,
        report_multiple_bugs=False,
        print_blob=False,
        phases=tuple(p for p in Phase if p is not Phase.explain),
    )
    failure = None
    stats: list[dict] = []
    try:
        with statistics.collector.with_value(stats.append):
            run_state_machine_as_test(machine, settings=chosen)
    except InvariantViolation as e:
        failure = Found(e.actions, e.violation, e.at)
    except BaseException:
        if not recorder.stopped:
            raise
        failure = recorder.best
    statuses = Counter(
        case["status"]
        for phase in stats
        for case in phase.get("generate-phase", {}).get("test-cases", ())
    )
    return Run(recorder, failure, time.perf_counter() - recorder.began, statuses)
