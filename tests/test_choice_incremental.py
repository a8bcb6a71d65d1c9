"""The chooser's interrupt test kept across choices (``IrqMemo``) draws exactly what a full
rescan at every choice draws, on every profile and both native engines."""

from __future__ import annotations

import pytest

from pcpfuzz.actions import Action
from pcpfuzz.engines.base import Budget
from pcpfuzz.engines.choice import VERIFY_ENV, Chooser
from pcpfuzz.engines.native import Policy, episode_rng, run_episode
from pcpfuzz.engines.pct import pct_policy
from pcpfuzz.engines.random_walk import _policy as random_walk_policy
from pcpfuzz.ladder import geometry_for
from pcpfuzz.ops import campaign_keeps_populated
from pcpfuzz.profiles import PROFILES, get_profile
from pcpfuzz.system import System

SEEDS = 3
EPISODES = 4
STEPS = 80


def _chooser(engine: str, policy: Policy) -> Chooser:
    """The chooser of one episode's ``policy`` (PCT's schedule holds one)."""
    return policy if engine == "random" else policy.chooser  # type: ignore[attr-defined,return-value]


def walks(engine: str, profile: str, memo: bool) -> list[list[Action]]:
    """Seeded episodes of ``engine`` on ``profile``'s campaign geometry, with the chooser's
    ``IrqMemo`` or (``memo`` false) a rescan at every choice."""
    p, geometry = get_profile(profile), geometry_for(profile)
    make = {"random": random_walk_policy, "pct": pct_policy()}[engine]
    budget = Budget(max_examples=1, steps=STEPS)
    out = []
    for seed in range(SEEDS):
        for index in range(EPISODES):
            s = System(p, geometry, keep_populated=campaign_keeps_populated(p))
            policy = make(s, episode_rng(engine, seed, index), budget)
            if not memo:
                _chooser(engine, policy).irq = None
            out.append(run_episode(s, policy, STEPS)[0])
    return out


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("engine", ["random", "pct"])
def test_kept_interrupt_test_draws_what_a_rescan_draws(
    engine: str, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same seeds draw the same actions with and without the kept test, and with
    ``PCPFUZZ_VERIFY_CHOOSER=1`` every choice's groups equal a full rescan's (asserted in
    ``Chooser.groups``)."""
    monkeypatch.setenv(VERIFY_ENV, "1")
    kept = walks(engine, profile, memo=True)
    assert kept == walks(engine, profile, memo=False)
    assert sum(map(len, kept)) > SEEDS * EPISODES * 5


def test_verify_mode_catches_a_stale_memo(monkeypatch: pytest.MonkeyPatch) -> None:
    """A memo whose answer went stale fails the verify mode's assertion."""
    monkeypatch.setenv(VERIFY_ENV, "1")
    p = get_profile("v6.12")
    s = System(p, geometry_for("v6.12"), keep_populated=campaign_keeps_populated(p))
    policy = random_walk_policy(s, episode_rng("random", 0, 0), Budget(max_examples=1, steps=STEPS))
    chooser = _chooser("random", policy)
    assert chooser.verify
    irq = frozenset(("irq",))
    for _ in range(STEPS):
        busy = [i for i, c in enumerate(s.cpus) if c.task is not None]
        if busy and chooser.irq is not None:
            chooser.groups(s, irq)  # the memo now answers for this state
            chooser.irq.able[busy[0]] = not chooser.irq.able[busy[0]]
            with pytest.raises(AssertionError):
                chooser.groups(s, irq)
            return
        action = policy(s)
        assert action is not None
        s.apply(action)
    pytest.fail("no CPU was ever busy")
