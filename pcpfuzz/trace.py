"""Executing a trace: apply actions to a fresh ``System``, check every invariant after each,
and bring the system to rest at the end. The one executor behind replay, shrinking and every
engine's verdict."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from pcpfuzz.actions import Action
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.liveness import finish
from pcpfuzz.profiles import Profile
from pcpfuzz.system import NotEnabled, System
from pcpfuzz.violation import Violation

END = -1
"""The ``at`` of a violation found while bringing the system to rest after the last action."""


@attrs.frozen
class Outcome:
    """How a trace ends: the first violation and after which action (``END``: at rest), or
    a pass; ``applied`` counts the actions applied."""

    violation: Violation | None
    at: int | None
    applied: int

    @property
    def passed(self) -> bool:
        return self.violation is None

    @property
    def invariant(self) -> str | None:
        return None if self.violation is None else self.violation.invariant


def execute(
    profile: Profile,
    geometry: Geometry,
    actions: Sequence[Action],
    *,
    tracing: bool = False,
    system: System | None = None,
) -> Outcome:
    """Apply ``actions`` in order to a fresh system (or ``system``), stopping at the first
    violation; then, if none, ``finish`` and check once more. Raises ``NotEnabled`` for an
    action that cannot happen at its point."""
    s = system if system is not None else System(profile, geometry, tracing=tracing)
    for i, action in enumerate(actions):
        try:
            s.apply(action)
        except NotEnabled as e:
            raise NotEnabled(f"action {i}: {e}") from None
        found = check(s)
        if found:
            return Outcome(found[0], i, i + 1)
    found = finish(s) or check(s)
    if found:
        return Outcome(found[0], END, len(actions))
    return Outcome(None, None, len(actions))
