"""What every engine reports, and the registry the command line picks engines from."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from pcpfuzz.actions import Action
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.violation import Violation


@attrs.frozen
class Failure:
    """A failing trace: ``actions`` on ``profile``/``geometry`` break ``violation`` after action
    ``at`` (``pcpfuzz.trace.END``: while coming to rest after the last one)."""

    profile: Profile
    geometry: Geometry
    actions: tuple[Action, ...]
    violation: Violation
    at: int


@attrs.frozen
class Budget:
    """How long a campaign may run: examples (episodes) and wall-clock seconds, whichever ends
    first; ``steps`` is the length of one example."""

    max_examples: int = 1000
    seconds: float = 60.0
    steps: int = 60
    progress: Callable[[int, int], None] | None = attrs.field(default=None, eq=False)
    """Told (examples, model steps) now and then while a campaign runs, for a progress bar."""
    first_example: int = 0
    """The index of the first example (episode) to run: a work unit of a distributed campaign
    (``pcpfuzz.campaign``) runs the examples ``first_example`` onwards of a serial run's seed;
    engines without numbered episodes (``hypothesis``) ignore it."""


@attrs.frozen
class Campaign:
    """The result of one engine on one profile."""

    profile: str
    engine: str
    seed: int
    examples: int
    model_steps: int
    """Actions applied to the model, shrinking excluded."""
    seconds: float
    failure: Failure | None = None
    """The shrunk failing trace, when one was found."""
    found_after: float | None = None
    """Seconds from the start to the first failure."""
    original_length: int | None = None
    shrink_seconds: float | None = None
    events: dict[str, int] = attrs.Factory(dict)
    bound: float | None = None
    """PCT: the probability bound 1/(n*k^(d-1)) of finding a depth-d bug in one episode of k
    steps on n CPUs; None for engines without one."""


EngineFn = Callable[[Profile, Geometry, int, Budget], Campaign]
ENGINES: dict[str, EngineFn] = {}
EPISODE_STEPS: dict[str, int] = {}
"""The ``Budget.steps`` an engine finds bugs fastest with, for engines that name one (the
native engines explore best with longer episodes than ``Budget``'s default)."""


def register(name: str, steps: int | None = None) -> Callable[[EngineFn], EngineFn]:
    """Register an engine under ``name``, with its preferred episode length ``steps``."""

    def deco(fn: EngineFn) -> EngineFn:
        ENGINES[name] = fn
        if steps is not None:
            EPISODE_STEPS[name] = steps
        return fn

    return deco


def budget_for(
    engine: str,
    max_examples: int,
    seconds: float,
    progress: Callable[[int, int], None] | None = None,
) -> Budget:
    """A budget with ``engine``'s preferred episode length (``Budget``'s default otherwise)."""
    steps = EPISODE_STEPS.get(engine, attrs.fields(Budget).steps.default)
    return Budget(max_examples, seconds, steps, progress)
