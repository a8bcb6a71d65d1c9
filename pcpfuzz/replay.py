"""Replaying corpus entries: a plain driver over ``pcpfuzz.trace.execute``, no Hypothesis.

Each entry's actions run twice on its profile (once traced, once not) and must end in the same
state and reach the recorded outcome; then they must pass on each ``must_pass`` profile.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from pcpfuzz.corpus import (
    Entry,
    Expect,
    MalformedEntry,
    dumps,
    load_entry,
    profile_of,
)
from pcpfuzz.files import write_atomically
from pcpfuzz.fingerprint import fingerprint
from pcpfuzz.profiles import get_profile
from pcpfuzz.render import format_plain, render
from pcpfuzz.system import NotEnabled, System
from pcpfuzz.trace import END, Outcome, execute


@attrs.frozen
class Divergence:
    """On ``profile``, behaviour first differs from the record at action ``at`` (``END``: at
    rest; None: not tied to one action)."""

    profile: str
    at: int | None
    expected: str
    actual: str


@attrs.frozen
class ReplayResult:
    """What replaying one entry found."""

    path: Path | None
    entry: Entry
    outcome: Outcome
    divergences: tuple[Divergence, ...]
    trace: tuple[str, ...]
    """This run's rendering; differs from ``entry.trace`` when the log wording changed."""

    @property
    def ok(self) -> bool:
        return not self.divergences

    @property
    def trace_stale(self) -> bool:
        return self.trace != self.entry.trace

    def first_trace_difference(self) -> str | None:
        """The first recorded trace line that this run renders differently, with the action
        it is under, or None when the renderings agree."""
        header = "(before the first action)"
        for old, new in zip(self.entry.trace + ("",), self.trace + ("",), strict=False):
            if old != new:
                return f"under {header}: recorded {old.strip()!r}, now {new.strip()!r}"
            if old.startswith("#") or old.startswith("--"):
                header = old
        return None


def describe(expect: Expect | None) -> str:
    """An expectation (or an outcome, via ``expect_of``) in words."""
    if expect is None:
        return "passes"
    where = "at rest" if expect.at == END else f"after action {expect.at}"
    return f"{expect.invariant} {where}: {expect.message}"


def expect_of(outcome: Outcome) -> Expect | None:
    """An outcome in the corpus's terms."""
    v = outcome.violation
    return None if v is None or outcome.at is None else Expect(v.invariant, outcome.at, v.message)


def _position(expect: Expect | None, length: int) -> int:
    """Where a failure shows (at rest counts as after the last action); passing: never."""
    if expect is None:
        return length + 1
    return length if expect.at == END else expect.at


def first_difference(expected: Expect | None, actual: Expect | None, length: int) -> int:
    """The action at which two outcomes of the same ``length`` actions first differ."""
    pos = min(_position(expected, length), _position(actual, length))
    return END if pos >= length else pos


_ACTION_PREFIX = re.compile(r"action (\d+): (.*)")


def _not_enabled(e: NotEnabled) -> tuple[int | None, str]:
    """``execute``'s ``action N: ...`` message as (N, rest)."""
    m = _ACTION_PREFIX.fullmatch(str(e))
    return (int(m[1]), m[2]) if m else (None, str(e))


def _must_pass(entry: Entry, name: str) -> Divergence | None:
    try:
        outcome = execute(get_profile(name), entry.geometry, entry.actions)
    except NotEnabled as e:
        at, reason = _not_enabled(e)
        return Divergence(name, at, "passes", f"action {at} is not enabled: {reason}")
    actual = expect_of(outcome)
    if actual is None:
        return None
    return Divergence(
        name, first_difference(None, actual, len(entry.actions)), "passes", describe(actual)
    )


def replay_entry(entry: Entry, path: Path | None = None) -> ReplayResult:
    """Replay ``entry`` (see the module docstring). Raises ``MalformedEntry`` when an action is
    not enabled on the entry's own profile."""
    profile = profile_of(entry)
    prefix = f"{path}: " if path is not None else ""
    try:
        traced = render(profile, entry.geometry, entry.actions)
    except NotEnabled as e:
        at, reason = _not_enabled(e)
        raise MalformedEntry(f"{prefix}actions[{at}]: not enabled: {reason}") from None
    plain = System(profile, entry.geometry)
    again = execute(profile, entry.geometry, entry.actions, system=plain)
    divergences = []
    if fingerprint(traced.system) != fingerprint(plain) or again != traced.outcome:
        divergences.append(
            Divergence(
                entry.profile,
                None,
                "two runs of the same actions end in the same state",
                f"they differ (outcomes: {describe(expect_of(traced.outcome))}; "
                f"{describe(expect_of(again))}): the model is nondeterministic",
            )
        )
    actual = expect_of(traced.outcome)
    if actual != entry.expect:
        at = first_difference(entry.expect, actual, len(entry.actions))
        divergences.append(Divergence(entry.profile, at, describe(entry.expect), describe(actual)))
    divergences.extend(d for name in entry.must_pass if (d := _must_pass(entry, name)) is not None)
    return ReplayResult(
        path, entry, traced.outcome, tuple(divergences), tuple(format_plain(traced))
    )


def load_entries(paths: Iterable[Path]) -> Iterator[tuple[Path, Entry] | MalformedEntry]:
    """Every entry named by ``paths`` (files, or directories searched recursively for
    ``*.json`` in sorted order) as ``(path, entry)``, or the ``MalformedEntry`` that says why
    it cannot be read."""
    for p in paths:
        if p.is_dir():
            files = sorted(p.rglob("*.json"))
        elif p.is_file():
            files = [p]
        else:
            yield MalformedEntry(f"{p}: no such file or directory")
            continue
        for f in files:
            try:
                yield f, load_entry(f)
            except MalformedEntry as e:
                yield e


def replay_paths(paths: Iterable[Path]) -> Iterator[ReplayResult | MalformedEntry]:
    """Load and replay every entry under ``paths``; a malformed one does not stop the rest."""
    for loaded in load_entries(paths):
        if isinstance(loaded, MalformedEntry):
            yield loaded
            continue
        try:
            yield replay_entry(loaded[1], loaded[0])
        except MalformedEntry as e:
            yield e


def update_trace(result: ReplayResult) -> Path:
    """Rewrite a replayed entry's file with this run's trace rendering; only for an entry that
    behaves as recorded (the rendering is not the contract, the outcome is). The file is
    replaced whole or not at all; raises ``WriteError`` when it cannot be written."""
    if result.path is None or not result.ok:
        raise ValueError("only an entry read from a file and replayed as recorded is updated")
    write_atomically(result.path, dumps(attrs.evolve(result.entry, trace=result.trace)))
    return result.path
