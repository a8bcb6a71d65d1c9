"""The episode loop shared by the native engines: fresh ``System``, a policy picks each action,
every invariant is checked after it, ``finish`` at the end; the first failure is shrunk.

An episode is exactly what ``pcpfuzz.trace.execute`` does with the same actions, so a failing
episode replays with it; episodes are deterministic per (engine, seed, episode index).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable

from pcpfuzz.actions import Action
from pcpfuzz.engines.base import Budget, Campaign, Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.liveness import finish
from pcpfuzz.ops import campaign_keeps_populated
from pcpfuzz.profiles import Profile
from pcpfuzz.shrink import shrink
from pcpfuzz.system import System
from pcpfuzz.trace import END

PROGRESS_EVERY = 32
"""Episodes between two reports to ``Budget.progress``."""
Policy = Callable[[System], Action | None]
"""Picks the next action in a state (None: nothing left to do in this episode)."""
PolicyFactory = Callable[[System, random.Random, Budget], Policy]
"""Makes one episode's policy from its fresh system, its random source and the budget."""


def episode_rng(engine: str, seed: int, index: int) -> random.Random:
    """The random source of episode ``index`` (string seeds hash with SHA-512: stable)."""
    return random.Random(f"{engine}:{seed}:{index}")


def run_episode(s: System, policy: Policy, steps: int) -> tuple[list[Action], Failure | None]:
    """Up to ``steps`` actions from ``policy`` on ``s``; the actions and the first failure."""
    actions: list[Action] = []
    for i in range(steps):
        action = policy(s)
        if action is None:
            break
        s.apply(action)
        actions.append(action)
        found = check(s)
        if found:
            return actions, Failure(s.profile, s.geo, tuple(actions), found[0], i)
    found = finish(s) or check(s)
    if found:
        return actions, Failure(s.profile, s.geo, tuple(actions), found[0], END)
    return actions, None


def run_campaign(
    engine: str,
    make_policy: PolicyFactory,
    profile: Profile,
    geometry: Geometry,
    seed: int,
    budget: Budget,
    *,
    bound: float | None = None,
) -> Campaign:
    """Episodes until the budget ends or one fails; the failure is shrunk (for at most as long
    again as the budget's seconds) before returning."""
    began = time.perf_counter()
    deadline = began + budget.seconds
    examples = model_steps = 0
    events: Counter[str] = Counter()
    failure = None
    while examples < budget.max_examples and time.perf_counter() < deadline:
        s = System(profile, geometry, keep_populated=campaign_keeps_populated(profile))
        policy = make_policy(s, episode_rng(engine, seed, budget.first_example + examples), budget)
        actions, failure = run_episode(s, policy, budget.steps)
        examples += 1
        model_steps += len(actions)
        events.update(s.events)
        if budget.progress is not None and examples % PROGRESS_EVERY == 0:
            budget.progress(examples, model_steps)
        if failure is not None:
            break
    found_after = time.perf_counter() - began
    common = {
        "profile": profile.name,
        "engine": engine,
        "seed": seed,
        "examples": examples,
        "model_steps": model_steps,
        "events": dict(sorted(events.items())),
        "bound": bound,
    }
    if failure is None:
        return Campaign(seconds=found_after, **common)
    shrunk = shrink(failure, deadline=time.monotonic() + budget.seconds)
    return Campaign(
        seconds=time.perf_counter() - began,
        failure=shrunk,
        found_after=found_after,
        original_length=len(failure.actions),
        shrink_seconds=time.perf_counter() - began - found_after,
        **common,
    )
