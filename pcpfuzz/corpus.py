"""The counterexample corpus: versioned, human-readable JSON entries, one failing (or passing)
trace each, loaded and saved through cattrs with strict validation.

An entry is the contract ``actions`` on ``profile``/``geometry`` reach ``expect`` (an invariant
broken after a given action, with its message, or ``"passes"``), and pass on each ``must_pass``
profile. ``trace`` is a kernel-style rendering for reviewers, not part of the contract.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import cattrs

from pcpfuzz.actions import ACTION_KIND, ACTION_TYPES, Action, Interrupt, Start
from pcpfuzz.engines.base import Failure
from pcpfuzz.engines.registry import ENGINE_NAMES
from pcpfuzz.files import WriteError, check_writable_dir, write_atomically
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import INVARIANT_NAMES
from pcpfuzz.ladder import kernels_to_pass
from pcpfuzz.ops import NESTED_OPS, OPS, Op
from pcpfuzz.profiles import PROFILES, Profile, get_profile
from pcpfuzz.render import format_plain, render
from pcpfuzz.trace import END

FORMAT_VERSION = 1
LINE_WIDTH = 100
CORPUS_ENV = "PCPFUZZ_CORPUS"
"""When set, engines save each shrunk failure under this directory (CI leaves it unset)."""

FINDERS = (*ENGINE_NAMES, "prove")
"""What may have found an entry: an engine, or ``pcpfuzz prove``'s exhaustive search."""


MAX_ENTRY_BYTES = 1 << 20
"""The largest entry file read: a shrunk trace is a few kilobytes."""
GEOMETRY_BOUNDS: Mapping[str, tuple[int, int]] = {
    "nr_blocks": (1, 64),
    "block_pages": (1, 4096),
    "pageblock_order": (0, 10),
    "max_order": (1, 11),
    "nr_cpus": (1, 64),
    "fraction": (0, 1 << 31),
    "sizing_scale": (1, 1 << 20),
    "pages_min": (0, 1 << 20),
}
"""The range of each integer geometry field an entry may give (the kernel's MAX_ORDER is at
most 11), checked before a ``Geometry`` is built."""
MAX_PAGES = 1 << 16
"""The most pages (``nr_blocks * block_pages``) an entry's zone may have."""


@attrs.frozen
class Expect:
    """The recorded failure: ``invariant`` broken after action ``at`` (``-1``: at rest)."""

    invariant: str
    at: int
    message: str


@attrs.frozen
class FoundBy:
    """How the entry was found: the engine and its seed (None when it has none)."""

    engine: str
    seed: int | None = None


@attrs.frozen
class Entry:
    """One corpus entry; ``expect`` None means the actions must pass."""

    format: int
    profile: str
    geometry: Geometry
    expect: Expect | None
    must_pass: tuple[str, ...]
    found_by: FoundBy
    actions: tuple[Action, ...]
    trace: tuple[str, ...] = ()

    def content_hash(self) -> str:
        """A short hash of what defines the run (profile, geometry, actions), for the file
        name: the same failure found twice gets the same name."""
        key = [self.profile, _converter.unstructure(self.geometry), _unstructure_actions(self)]
        blob = json.dumps(key, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def file_name(self) -> str:
        """``<invariant>-<hash>.json`` (``passes-<hash>.json`` for a passing entry)."""
        name = self.expect.invariant if self.expect is not None else "passes"
        return f"{name}-{self.content_hash()}.json"


class MalformedEntry(ValueError):
    """An entry that cannot be read: ``str`` is one line naming the field or action index."""


class CorpusError(WriteError):
    """An entry file of the right name that holds something else: one line naming it."""


class _FieldError(ValueError):
    """A structuring error whose message is shown as is, about ``field`` of the value being
    structured when given."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# ---- the converter -----------------------------------------------------------------------------


def _strict(kind: type, what: str, field: str | None = None) -> Callable[[Any, Any], Any]:
    def hook(value: Any, _type: Any) -> Any:
        if type(value) is not kind:
            raise _FieldError(f"expected {what}, got {json.dumps(value)}", field)
        return value

    return hook


def _structure_action(raw: Any, _type: Any) -> Action:
    if not isinstance(raw, dict):
        raise _FieldError(f"expected an action object, got {json.dumps(raw)}")
    kind = raw.get("do")
    cls = ACTION_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(ACTION_TYPES)
        raise _FieldError(f"unknown action kind {kind!r} (known: {known})", "do")
    with_op = cls in (Start, Interrupt)
    allowed = {"cpu", "do", "op", "args"} if with_op else {"cpu", "do"}
    extra = sorted(set(raw) - allowed)
    if extra:
        raise _FieldError(f"unknown field(s) {', '.join(extra)} for a {kind!r} action")
    cpu = _strict(int, "a CPU number", "cpu")(raw.get("cpu"), int)
    if not with_op:
        return cls(cpu)
    op = raw.get("op")
    if op not in (OPS if cls is Start else NESTED_OPS):
        what = "operation" if cls is Start else "operation for an interrupt"
        raise _FieldError(f"unknown {what} {op!r}", "op")
    args = raw.get("args", [])
    if not isinstance(args, list) or any(type(a) is not int for a in args):
        raise _FieldError(f"expected a list of integers, got {json.dumps(args)}", "args")
    least, most = _arity(OPS[op])
    if not least <= len(args) <= (len(args) if most is None else most):
        want = f"at least {least}" if most is None else str(least)
        raise _FieldError(f"{op} takes {want} argument(s), got {len(args)}", "args")
    return cls(cpu, op, tuple(args))


def _arity(op: Op) -> tuple[int, int | None]:
    """The least and most arguments ``op`` takes after the system and the task (most: None
    when it takes any number)."""
    params = list(inspect.signature(op.run).parameters.values())[2:]
    fixed = [p for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    return len(fixed), None if len(fixed) < len(params) else len(fixed)


def _unstructure_action(action: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"cpu": action.cpu, "do": ACTION_KIND[type(action)]}
    if isinstance(action, Start | Interrupt):
        out["op"] = action.op
        out["args"] = list(action.args)
    return out


def _structure_expect(raw: Any, _type: Any) -> Expect | None:
    if raw == "passes":
        return None
    if not isinstance(raw, dict):
        raise _FieldError('expected "passes" or {"invariant", "at", "message"}')
    return _converter.structure(raw, Expect)


def _unstructure_actions(entry: Entry) -> list[dict[str, Any]]:
    return [_unstructure_action(a) for a in entry.actions]


def _make_converter() -> cattrs.Converter:
    c = cattrs.Converter(forbid_extra_keys=True)
    c.register_structure_hook(int, _strict(int, "an integer"))
    c.register_structure_hook(str, _strict(str, "a string"))
    c.register_structure_hook(bool, _strict(bool, "true or false"))
    c.register_structure_hook_func(lambda t: t == Action, _structure_action)
    c.register_unstructure_hook_func(lambda t: t == Action, _unstructure_action)
    for cls in ACTION_TYPES.values():
        c.register_unstructure_hook(cls, _unstructure_action)
    c.register_structure_hook_func(lambda t: t == Expect | None, _structure_expect)
    c.register_unstructure_hook_func(
        lambda t: t == Expect | None,
        lambda e: "passes" if e is None else c.unstructure(e, Expect),
    )
    return c


_converter = _make_converter()


def _describe(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _FieldError):
        return str(exc)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown field(s) {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, ValueError) and type_ is None:
        return str(exc)  # an attrs validator's own message, e.g. Geometry's
    return cattrs.v.format_exception(exc, type_)


def _errors(exc: BaseException, path: str = "", type_: Any = None) -> Iterator[str]:
    """``field.path: reason`` for each error in cattrs' exception tree."""
    if isinstance(exc, cattrs.ClassValidationError | cattrs.IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            step = f".{note.name}" if isinstance(note, cattrs.AttributeValidationNote) else ""
            step = step or f"[{note.index}]"
            yield from _errors(sub, path + step, note.type)
        for sub in without:
            yield from _errors(sub, path)
        return
    if isinstance(exc, _FieldError) and exc.field:
        path += f".{exc.field}"
    yield f"{path.lstrip('.') or 'entry'}: {_describe(exc, type_)}"


def _check(entry: Entry) -> None:
    """What the types do not say: known names, and an ``at`` inside the trace."""
    if entry.profile not in PROFILES:
        raise MalformedEntry(f"profile: unknown profile {entry.profile!r}")
    for i, name in enumerate(entry.must_pass):
        if name not in PROFILES:
            raise MalformedEntry(f"must_pass[{i}]: unknown profile {name!r}")
    if entry.found_by.engine not in FINDERS:
        raise MalformedEntry(
            f"found_by.engine: unknown engine {entry.found_by.engine!r} "
            f"(known: {', '.join(FINDERS)})"
        )
    e = entry.expect
    if e is not None:
        if e.invariant not in INVARIANT_NAMES:
            raise MalformedEntry(f"expect.invariant: unknown invariant {e.invariant!r}")
        if not END <= e.at < len(entry.actions):
            raise MalformedEntry(
                f"expect.at: {e.at} is not an action index (0..{len(entry.actions) - 1}) "
                f"or {END} (at rest)"
            )


def _check_geometry_bounds(raw: Any) -> None:
    """Every integer geometry field inside ``GEOMETRY_BOUNDS``, and at most ``MAX_PAGES``
    pages, before a ``Geometry`` (or a ``System`` of that size) is built."""
    if not isinstance(raw, dict):
        return  # the converter says what is wrong
    for name, (low, high) in GEOMETRY_BOUNDS.items():
        value = raw.get(name)
        if type(value) is int and not low <= value <= high:
            raise MalformedEntry(f"geometry.{name}: {value} is outside {low}..{high}")
    blocks, pages = raw.get("nr_blocks", 1), raw.get("block_pages", 1)
    if type(blocks) is int and type(pages) is int and blocks * pages > MAX_PAGES:
        raise MalformedEntry(
            f"geometry: nr_blocks * block_pages = {blocks * pages} pages, more than {MAX_PAGES}"
        )


def parse_entry(text: str) -> Entry:
    """Read an entry from JSON text; raises ``MalformedEntry`` with a one-line reason."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise MalformedEntry(f"bad JSON: {e}") from None
    except RecursionError:
        raise MalformedEntry("bad JSON: nested too deeply") from None
    if not isinstance(raw, dict):
        raise MalformedEntry("entry: expected a JSON object")
    version = raw.get("format")
    if version != FORMAT_VERSION:
        raise MalformedEntry(
            f"format: version {json.dumps(version)} is not supported "
            f"(this pcpfuzz reads version {FORMAT_VERSION})"
        )
    _check_geometry_bounds(raw.get("geometry"))
    try:
        entry = _converter.structure(raw, Entry)
    except cattrs.BaseValidationError as e:
        raise MalformedEntry("; ".join(_errors(e))) from None
    _check(entry)
    return entry


def load_entry(path: Path) -> Entry:
    """Read the entry at ``path``; raises ``MalformedEntry`` (message prefixed with the path)."""
    try:
        size = path.stat().st_size
        if size > MAX_ENTRY_BYTES:
            raise MalformedEntry(f"{size} bytes, more than the {MAX_ENTRY_BYTES} an entry may have")
        return parse_entry(path.read_text())
    except MalformedEntry as e:
        raise MalformedEntry(f"{path}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MalformedEntry(f"{path}: cannot read: {e}") from None


def dumps(entry: Entry) -> str:
    """The entry as JSON, one top-level field a line; a field too long for a line (the
    geometry, the actions, the trace) gets one member per line, members compact, so a diff
    shows one changed action or trace line as one changed line."""
    parts = []
    for key, value in _converter.unstructure(entry).items():
        text = json.dumps(value)
        if len(text) + len(key) + 6 > LINE_WIDTH and isinstance(value, dict):
            members = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()]
            text = "{\n" + ",\n".join(members) + "\n  }"
        elif len(text) + len(key) + 6 > LINE_WIDTH and isinstance(value, list):
            text = "[\n" + ",\n".join(f"    {json.dumps(v)}" for v in value) + "\n  ]"
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


# ---- making and saving entries -----------------------------------------------------------------


def make_entry(
    profile: Profile,
    geometry: Geometry,
    actions: Sequence[Action],
    found_by: FoundBy,
    must_pass: Sequence[str] | None = None,
) -> Entry:
    """An entry whose expectation is what ``actions`` do now (run with tracing, which also
    gives the rendering); ``must_pass`` defaults to ``pcpfuzz.ladder.kernels_to_pass``: the
    kernel with the fix, where the actions can run."""
    rendering = render(profile, geometry, actions)
    out = rendering.outcome
    v = out.violation
    expect = None if v is None or out.at is None else Expect(v.invariant, out.at, v.message)
    return Entry(
        format=FORMAT_VERSION,
        profile=profile.name,
        geometry=geometry,
        expect=expect,
        must_pass=tuple(
            kernels_to_pass(profile, geometry, actions) if must_pass is None else must_pass
        ),
        found_by=found_by,
        actions=tuple(actions[: out.applied]),
        trace=tuple(format_plain(rendering)),
    )


def save_entry(entry: Entry, corpus_dir: Path) -> Path:
    """Write ``entry`` to ``corpus_dir/<profile>/<file_name>`` (the whole file or nothing:
    written beside it, then renamed) unless that file already records the same run; returns
    its path. Raises ``WriteError`` when it cannot be written, ``CorpusError`` when a file of
    that name holds something else (it is reported, never trusted or overwritten)."""
    path = Path(corpus_dir) / entry.profile / entry.file_name()
    if path.exists() or path.is_symlink():
        try:
            recorded = load_entry(path)
        except MalformedEntry as e:
            raise CorpusError(f"{path} exists and is not this entry: {e}") from None
        if recorded.content_hash() != entry.content_hash():
            raise CorpusError(f"{path} exists and records another run")
        return path
    check_writable_dir(path.parent)
    write_atomically(path, dumps(entry))
    return path


def check_corpus_dir(corpus_dir: Path, profiles: Sequence[str]) -> None:
    """Fail early, before a campaign runs, if entries for ``profiles`` cannot be saved under
    ``corpus_dir`` (see ``check_writable_dir``); raises ``WriteError``."""
    for d in (Path(corpus_dir), *(Path(corpus_dir) / p for p in profiles)):
        check_writable_dir(d)


def save_failure(
    failure: Failure,
    corpus_dir: Path,
    found_by: FoundBy | Mapping[str, Any],
    must_pass: Sequence[str] | None = None,
) -> Path:
    """Record an engine's (shrunk) failure in the corpus; ``found_by`` is a ``FoundBy`` or
    ``{"engine": ..., "seed": ...}``. Raises ``ValueError`` when the actions do not reproduce
    the failure under ``pcpfuzz.trace.execute``, ``WriteError`` (a ``ValueError``) when the
    entry cannot be written."""
    if not isinstance(found_by, FoundBy):
        found_by = FoundBy(**found_by)
    entry = make_entry(failure.profile, failure.geometry, failure.actions, found_by, must_pass)
    want = Expect(failure.violation.invariant, failure.at, failure.violation.message)
    if entry.expect != want:
        raise ValueError(f"the failure does not reproduce: expected {want}, got {entry.expect}")
    return save_entry(entry, corpus_dir)


def save_from_env(failure: Failure, found_by: FoundBy | Mapping[str, Any]) -> Path | None:
    """``save_failure`` into the directory named by ``PCPFUZZ_CORPUS``; None (nothing saved)
    when it is unset, as in CI. For drivers without a command-line option, such as the
    Hypothesis state machine under pytest."""
    corpus_dir = os.environ.get(CORPUS_ENV)
    return save_failure(failure, Path(corpus_dir), found_by) if corpus_dir else None


def profile_of(entry: Entry) -> Profile:
    """The entry's profile (validated at load)."""
    return get_profile(entry.profile)
