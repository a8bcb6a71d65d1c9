"""Meta-tests that really run the property suite (``stateful.runner``, the ``ci`` settings,
fixed seeds, the default geometry): it finds the §15.1 race on v5.9-nofix and shrinks it to a
short trace that replays; it finds nothing on v5.10 and v5.11; and it finds other known bugs."""

import time

import pytest

from pcpfuzz.engines.base import Budget, Failure
from pcpfuzz.engines.hypothesis_engine import hypothesis_engine
from pcpfuzz.geometry import DEFAULT_GEOMETRY, Geometry
from pcpfuzz.ladder import expected, geometry_for
from pcpfuzz.profiles import get_profile
from pcpfuzz.shrink import shrink
from pcpfuzz.trace import execute
from stateful.machine import RACE_WINDOW
from stateful.runner import Run, run
from stateful.settings import PROFILES

CI = PROFILES["ci"]
RACE = ("ISO-PCP", "ISO-NO-ALLOC", "OFFLINE-TERM")
"""What the race of spec §15.1 breaks on v5.9-nofix."""
MINIMAL = 6
"""Actions in the minimal interleaving of spec §15.1 (alloc, its refill, the free's prepare,
the offline's start and run, the commit; OFFLINE-TERM at rest needs no commit)."""
SEARCH_EXAMPLES = 1000
"""Examples a search for the race may take: the ``ci`` settings but this budget, as the first
failure takes about 64 examples at the median (``benchmarks/hypothesis_time_to_bug.py``) and
Hypothesis's generation for a seed also depends on the modules the process has imported (it
draws constants from them), so a seed's count varies between runs of the suite."""
SHRINK_LIMIT = 400
"""Examples Hypothesis may spend shrinking (a count, not seconds, so the test is
deterministic)."""


def ci_run(
    profile: str,
    seed: int,
    geometry: Geometry = DEFAULT_GEOMETRY,
    max_examples: int = CI.max_examples,
    **kw: object,
) -> Run:
    return run(
        get_profile(profile),
        geometry,
        seed,
        max_examples=max_examples,
        steps=CI.stateful_step_count,
        base="ci",
        **kw,
    )


def replays(profile: str, geometry: Geometry, failure: Failure) -> bool:
    out = execute(get_profile(profile), geometry, failure.actions)
    return (out.invariant, out.at) == (failure.violation.invariant, failure.at)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_suite_finds_the_race_on_v5_9_nofix_and_shrinks_it(seed: int) -> None:
    r = ci_run(
        "v5.9-nofix",
        seed,
        max_examples=SEARCH_EXAMPLES,
        shrink_limit=SHRINK_LIMIT,
        keep_populated=True,
    )
    assert r.failure is not None and r.recorder.first is not None
    assert r.failure.violation.invariant in RACE
    profile, geo = get_profile("v5.9-nofix"), DEFAULT_GEOMETRY
    found = Failure(profile, geo, r.failure.actions, r.failure.violation, r.failure.at)
    assert replays("v5.9-nofix", geo, found)
    assert len(found.actions) <= len(r.recorder.first.actions)
    shrunk = shrink(found, deadline=time.monotonic() + 60)
    assert shrunk.violation.invariant in RACE
    assert replays("v5.9-nofix", geo, shrunk)
    assert len(shrunk.actions) <= MINIMAL + 2


@pytest.mark.parametrize("profile", ["v5.10", "v5.11"])
def test_the_suite_finds_nothing_on_the_fixed_kernels(profile: str) -> None:
    # v5.10 keeps the zone populated: emptying it races with allocations until patch 7
    # (``tests/test_stateful.py::test_emptying_the_zone_loses_pages_until_patch_7``).
    r = ci_run(profile, 0, keep_populated=profile == "v5.10")
    assert r.failure is None
    assert r.recorder.examples >= CI.max_examples
    assert r.statuses["valid"] == CI.max_examples and r.statuses["invalid"] == 0
    assert r.recorder.race_windows > 0


@pytest.mark.parametrize("profile", ["v5.8-online-nopcpupdate", "v5.11-noenable-onfail"])
def test_the_suite_finds_known_bugs(profile: str) -> None:
    r = ci_run(profile, 0, geometry_for(profile), shrink_limit=0)
    assert r.failure is not None and r.failure.violation.invariant in expected(profile)


def test_the_engine_reports_a_replayable_shrunk_failure_and_its_counts() -> None:
    budget = Budget(max_examples=SEARCH_EXAMPLES, seconds=600, steps=CI.stateful_step_count)
    c = hypothesis_engine(get_profile("v5.9-nofix"), DEFAULT_GEOMETRY, 1, budget)
    assert c.engine == "hypothesis" and c.failure is not None
    assert replays("v5.9-nofix", DEFAULT_GEOMETRY, c.failure)
    assert c.original_length is not None and len(c.failure.actions) <= c.original_length
    assert c.examples > 0 and c.model_steps >= c.original_length
    assert c.found_after is not None and c.found_after <= c.seconds
    # The failing example itself had a free in flight while the offline isolated its page.
    assert c.events[RACE_WINDOW] >= 1 and c.events["free committed with a stale migratetype"]
