"""The ``hypothesis`` engine: the property suite's state machine (``stateful/``) run
programmatically, seeded and without an example database.

Hypothesis searches for ``budget.seconds``, then shrinks for at most ``HYPOTHESIS_SHRINK_SECONDS``
(its shrinker makes most of its progress in the first seconds on this machine); the trace
shrinker (``pcpfuzz.shrink``) finishes the job, as for the native engines. The failure replays
with ``pcpfuzz.trace.execute`` to the same invariant.
"""

from __future__ import annotations

import time

from pcpfuzz.engines.base import Budget, Campaign, Failure, register
from pcpfuzz.geometry import Geometry
from pcpfuzz.ops import campaign_keeps_populated
from pcpfuzz.profiles import Profile
from pcpfuzz.shrink import shrink
from stateful.machine import RACE_WINDOW
from stateful.runner import run
from stateful.settings import PROFILES

HYPOTHESIS_SHRINK_SECONDS = 10.0
TRACE_SHRINK_SECONDS = 30.0
EXAMPLE_STEPS = PROFILES["ci"].stateful_step_count
"""The example length the settings profiles use (25: measured best for v5.9-nofix's race)."""


@register("hypothesis", steps=EXAMPLE_STEPS)
def hypothesis_engine(profile: Profile, geometry: Geometry, seed: int, budget: Budget) -> Campaign:
    """Search ``profile`` with Hypothesis seed ``seed``; ``events`` sums the model's behaviour
    counters over the search's examples, plus the number of examples with a free in flight
    while an isolation or pcp-disable ran (``stateful.machine.RACE_WINDOW``)."""
    r = run(
        profile,
        geometry,
        seed,
        max_examples=budget.max_examples,
        steps=budget.steps,
        seconds=budget.seconds,
        shrink_seconds=HYPOTHESIS_SHRINK_SECONDS,
        progress=budget.progress,
        keep_populated=campaign_keeps_populated(profile),
    )
    rec = r.recorder
    events = dict(sorted(rec.events.items()))
    events[RACE_WINDOW] = rec.race_windows
    common = {
        "profile": profile.name,
        "engine": "hypothesis",
        "seed": seed,
        "examples": rec.examples,
        "model_steps": rec.model_steps,
        "events": events,
    }
    if r.failure is None or rec.first is None or r.found_after is None:
        return Campaign(seconds=r.seconds, **common)
    found = Failure(profile, geometry, r.failure.actions, r.failure.violation, r.failure.at)
    shrunk = shrink(found, deadline=time.monotonic() + TRACE_SHRINK_SECONDS)
    seconds = time.perf_counter() - rec.began
    return Campaign(
        seconds=seconds,
        failure=shrunk,
        found_after=r.found_after,
        original_length=len(rec.first.actions),
        shrink_seconds=seconds - r.found_after,
        **common,
    )
