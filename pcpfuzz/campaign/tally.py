"""The per-profile account of a distributed campaign: which units to send next, what came home,
and when the profile is done.

A profile's finding is the failure of its lowest-indexed unit that found one, taken once every
unit before it has come home: the failure a serial run of the same seed and ``--max-examples``
meets first (it runs the same examples in the same order and stops at its first failure), so
the distributed result equals the serial one whatever order the units finish in.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import attrs

from pcpfuzz.campaign.units import Outcome, Unit, units_for
from pcpfuzz.engines.base import Campaign


@attrs.define
class ProfileTally:
    """One profile of the campaign: units from ``plan``, sent until ``deadline`` (a
    ``time.monotonic`` value) or the plan's end, or until the finding is settled."""

    profile: str
    engine: str
    seed: int
    deadline: float
    plan: Iterator[tuple[int, int, int]]
    began: float = attrs.Factory(time.monotonic)
    ended: float | None = None
    sent: int = 0
    running: dict[int, Unit] = attrs.Factory(dict)
    examples: int = 0
    model_steps: int = 0
    finders: dict[int, Outcome] = attrs.Factory(dict)
    lost: list[str] = attrs.Factory(list)
    retried: list[str] = attrs.Factory(list)
    exhausted: bool = False

    @classmethod
    def start(
        cls, profile: str, engine: str, seed: int, max_examples: int, seconds: float, size: int
    ) -> ProfileTally:
        plan = units_for(profile, engine, seed, max_examples, size)
        return cls(profile, engine, seed, time.monotonic() + seconds, plan)

    def next_unit(self, now: float) -> Unit | None:
        """The next unit to send, or None when this profile sends no more."""
        if self.exhausted or self.finders or now >= self.deadline:
            return None
        spec = next(self.plan, None)
        if spec is None:
            self.exhausted = True
            return None
        seed, first, count = spec
        unit = Unit(self.profile, self.engine, seed, first, count, self.deadline - now, self.sent)
        self.running[unit.index] = unit
        self.sent += 1
        return unit

    def record(self, outcome: Outcome) -> None:
        """A unit came home."""
        self.running.pop(outcome.unit.index)
        self.examples += outcome.campaign.examples
        self.model_steps += outcome.campaign.model_steps
        if outcome.campaign.failure is not None:
            self.finders[outcome.unit.index] = outcome
        self._end_if_done()

    def drop(self, unit: Unit, lost: str | None = None) -> None:
        """``unit`` will not come home: cancelled, or ``lost`` for that reason."""
        self.running.pop(unit.index)
        if lost is not None:
            self.lost.append(f"{unit} ({lost})")
        self._end_if_done()

    @property
    def finding(self) -> Outcome | None:
        """The settled finding: the lowest-indexed finder with no unit before it running."""
        if not self.finders:
            return None
        first = min(self.finders)
        return None if any(i < first for i in self.running) else self.finders[first]

    def superfluous(self) -> list[Unit]:
        """Running units after a finder: they cannot change the finding (to cancel)."""
        first = min(self.finders, default=None)
        return [] if first is None else [u for i, u in self.running.items() if i > first]

    @property
    def done(self) -> bool:
        return self.ended is not None

    def _end_if_done(self) -> None:
        stops = bool(self.finders) or self.exhausted or time.monotonic() >= self.deadline
        if stops and not self.running and self.ended is None:
            self.ended = time.monotonic()

    def check_deadline(self) -> None:
        """End the profile if its time is up and nothing is running."""
        self._end_if_done()

    def campaign(self) -> Campaign:
        """The profile's result as one campaign: summed counts, the settled failure."""
        f = self.finding
        return Campaign(
            profile=self.profile,
            engine=self.engine,
            seed=self.seed,
            examples=self.examples,
            model_steps=self.model_steps,
            seconds=(self.ended or time.monotonic()) - self.began,
            failure=None if f is None else f.campaign.failure,
        )

    def first_finder(self) -> dict[str, object] | None:
        """Who found the finding: the seed, the example's index in it, the worker."""
        f = self.finding
        if f is None:
            return None
        return {"seed": f.unit.seed, "example": f.example, "worker": f.worker}
