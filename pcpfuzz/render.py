"""A trace as a kernel-style log: the lines the model logs while it applies each action, then
those it logs while coming to rest, then the violation.

``render`` returns structured lines (for swim lanes and other views); ``format_plain`` turns
them into the text a reviewer reads in a corpus entry's ``trace``.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from pcpfuzz.actions import Action
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System
from pcpfuzz.trace import END, Outcome, execute


@attrs.frozen
class TraceLine:
    """One kernel-style line, logged while applying action ``index`` (``END``: while coming to
    rest after the last one, or the final violation) by ``cpu`` (None: no CPU)."""

    index: int
    action: Action | None
    cpu: int | None
    text: str


@attrs.frozen
class Fold:
    """A block of consecutive lines that occurs ``repeat`` times in a row (a retry loop)."""

    lines: tuple[TraceLine, ...]
    repeat: int


MAX_FOLD = 8
"""The longest block of lines ``fold`` looks for repeats of."""


@attrs.frozen
class Rendering:
    """A traced run: its actions, its lines in order, the outcome, and the final system."""

    actions: tuple[Action, ...]
    lines: tuple[TraceLine, ...]
    outcome: Outcome
    system: System


def fold(lines: Sequence[TraceLine]) -> list[Fold]:
    """Fold runs of a repeated block of up to ``MAX_FOLD`` consecutive lines (a retry loop)
    into one ``Fold``; greedy, taking at each point the block whose repeats cover most lines."""
    out: list[Fold] = []
    i = 0
    while i < len(lines):
        best_k, best_reps = 1, 1
        for k in range(1, MAX_FOLD + 1):
            block = lines[i : i + k]
            reps = 1
            while tuple(lines[i + reps * k : i + (reps + 1) * k]) == tuple(block):
                reps += 1
            if reps > 1 and k * reps > best_k * best_reps:
                best_k, best_reps = k, reps
        out.append(Fold(tuple(lines[i : i + best_k]), best_reps))
        i += best_k * best_reps
    return out


def _log_length_before_rest(profile: Profile, geometry: Geometry, actions: Sequence[Action]) -> int:
    """How many lines the actions log before ``finish`` starts: the log is indexed by actions
    applied, so the last action's lines and the coming-to-rest lines share an index."""
    s = System(profile, geometry, tracing=True)
    for action in actions:
        s.apply(action)
    return len(s.log)


def render(profile: Profile, geometry: Geometry, actions: Sequence[Action]) -> Rendering:
    """Execute ``actions`` with tracing on and return the log as structured lines. Raises
    ``NotEnabled`` like ``execute``."""
    actions = tuple(actions)
    s = System(profile, geometry, tracing=True)
    outcome = execute(profile, geometry, actions, system=s)
    rest_from = len(s.log)
    if outcome.at == END or outcome.passed:
        rest_from = _log_length_before_rest(profile, geometry, actions)
    lines = [
        TraceLine(idx - 1, actions[idx - 1], cpu, text)
        if n < rest_from
        else TraceLine(END, None, cpu, text)
        for n, (idx, cpu, text) in enumerate(s.log)
    ]
    if outcome.violation is not None:
        at = outcome.at if outcome.at is not None else END
        lines.append(
            TraceLine(at, None if at == END else actions[at], None, str(outcome.violation))
        )
    return Rendering(actions, tuple(lines), outcome, s)


def _text(line: TraceLine) -> str:
    lane = f"CPU{line.cpu}" if line.cpu is not None else ""
    return f"    {lane:<5} {line.text}".rstrip()


def _folded(lines: Sequence[TraceLine]) -> list[str]:
    out: list[str] = []
    for f in fold(lines):
        texts = [_text(line) for line in f.lines]
        if f.repeat > 1 and len(texts) == 1:
            texts[0] += f"  [x{f.repeat}]"
        elif f.repeat > 1:
            texts.append(f"          [the {len(texts)} lines above, x{f.repeat}]")
        out.extend(texts)
    return out


def format_plain(rendering: Rendering) -> list[str]:
    """The rendering as plain text lines: a header per action (``#3   CPU0 step``), its kernel
    lines indented under it with repeats folded, a ``-- at rest --`` header for what
    ``finish`` logged, and the violation (or ``every invariant holds``) last."""
    by_index: dict[int, list[TraceLine]] = {}
    for line in rendering.lines:
        by_index.setdefault(line.index, []).append(line)
    out: list[str] = []
    for i, action in enumerate(rendering.actions[: rendering.outcome.applied]):
        out.append(f"#{i:<3} {action}")
        out.extend(_folded(by_index.get(i, ())))
    rest = by_index.get(END, [])
    if rest:
        out.append("-- at rest (every task run to completion, each offline alone) --")
        out.extend(_folded(rest))
    if rendering.outcome.passed:
        out.append("every invariant holds")
    return out
