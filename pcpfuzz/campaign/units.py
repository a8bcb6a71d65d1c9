"""Work units: the pieces a distributed campaign is cut into, and the function that runs one.

A unit is (profile, engine, seed, first example, example count, seconds). It runs the engine's
own code, as ``pcpfuzz fuzz`` does, with ``Budget.first_example``: for the native engines, whose
episodes are numbered per seed, unit ``k`` of a profile runs the examples ``k * size`` onwards of
the serial run's seed, so the units of a profile together explore exactly the serial run's
episodes; for the ``hypothesis`` engine, which has no numbered episodes, unit ``k`` is a whole
run of seed ``seed + k``. Units depend on the command's arguments and the cluster's size only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import attrs

from pcpfuzz.engines.base import Campaign, budget_for
from pcpfuzz.engines.registry import load_engines
from pcpfuzz.ladder import geometry_for
from pcpfuzz.profiles import get_profile

EPISODIC = frozenset({"random", "pct"})
"""Engines built on ``pcpfuzz.engines.native.run_campaign``: they honour ``first_example``."""
UNIT_EXAMPLES = 256
"""The most examples in one unit: about a second of the ``random`` engine, long enough that the
scheduler's few milliseconds per task do not show, short enough that a lost worker loses little."""
UNITS_PER_THREAD = 4
"""A campaign of few examples is cut into at least this many units per worker thread."""


@attrs.frozen
class Unit:
    """One piece of a campaign: ``examples`` examples from ``first`` of ``engine`` with
    ``seed`` on ``profile``, for at most ``seconds``; ``index`` orders a profile's units as a
    serial run would meet their examples."""

    profile: str
    engine: str
    seed: int
    first: int
    examples: int
    seconds: float
    index: int

    def __str__(self) -> str:
        last = self.first + self.examples - 1
        return f"{self.profile} {self.engine} seed {self.seed} examples {self.first}-{last}"


@attrs.frozen
class Outcome:
    """What a unit brings home: the engine's campaign (with its shrunk failure) and the worker."""

    unit: Unit
    campaign: Campaign
    worker: str

    @property
    def example(self) -> int:
        """The index, in the unit's seed, of the last example run (the failing one if any)."""
        return self.unit.first + self.campaign.examples - 1


def unit_size(max_examples: int, threads: int) -> int:
    """Examples per unit: ``UNIT_EXAMPLES``, or fewer so that a small campaign still gives
    every worker thread ``UNITS_PER_THREAD`` units."""
    return max(1, min(UNIT_EXAMPLES, math.ceil(max_examples / (threads * UNITS_PER_THREAD))))


def units_for(
    profile: str, engine: str, seed: int, max_examples: int, size: int
) -> Iterator[tuple[int, int, int]]:
    """A profile's units in order, as (seed, first example, examples); the seconds are given
    when a unit is sent (what is left of the profile's budget)."""
    episodic = engine in EPISODIC
    for index, first in enumerate(range(0, max_examples, size)):
        count = min(size, max_examples - first)
        yield (seed, first, count) if episodic else (seed + index, 0, count)


def prepare() -> None:
    """Import every engine (on each worker before the clock starts, so that no unit pays it)."""
    load_engines()


def run_unit(unit: Unit) -> Outcome:
    """Run ``unit`` with the engine's own code (on a worker; runs anywhere)."""
    engine = load_engines()[unit.engine]
    budget = attrs.evolve(
        budget_for(unit.engine, unit.examples, unit.seconds), first_example=unit.first
    )
    campaign = engine(get_profile(unit.profile), geometry_for(unit.profile), unit.seed, budget)
    return Outcome(unit, campaign, _worker())


def _worker() -> str:
    """The address of the Dask worker running this, or ``local``."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"
