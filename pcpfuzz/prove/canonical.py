"""The canonical state of a ``System`` for the exhaustive search: everything that decides its
future, nothing that only counts its past.

``pcpfuzz.fingerprint.state_tuple`` compares two runs of the same actions, so it keeps the
history counters (``actions_applied``, ``steps``, ``events``) and task ids as allocated. Here
two states reached by different schedules must compare equal when their futures are the same:

- the history (``HISTORY``) is left out, or no state is ever reached twice;
- task ids are replaced by the CPU their task runs on (one task per CPU), ids of ended tasks by
  their rank, since ids only count the tasks started before;
- each task's generator stack is walked down its ``yield from`` chain: per frame the function,
  the bytecode offset where it is suspended and its locals, canonicalised the same way (the
  locals decide what the task does next: a loop's pfn, a cached count).

The walk is generic over ``vars(System)`` and ``attrs``/``__slots__`` objects, so state added
to the model later is included without a change here; a value of a type it does not know is a
``TypeError`` (a silently merged state would make a proof unsound).
"""

from __future__ import annotations

import hashlib
from enum import Enum
from types import FunctionType, GeneratorType
from typing import Any

import attrs

from pcpfuzz import BUILD
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.state import Task
from pcpfuzz.system import System

HISTORY = frozenset(
    {
        "actions_applied",
        "steps",
        "events",
        "log",
        "alloc_log",
        "_next_tid",
        "returned",
        "tracing",
        "mutexes",
        "dirty",
        "free_journal",
        "page_journal",
        "check_memo",
    }
)
"""``System`` attributes that record the past (or, ``mutexes``, repeat other attributes; the
dirty marks, journals and ``check_memo``: what the incremental checker last saw)."""
_PLAIN = frozenset({type(None), bool, int, str, float})
TID_FIELDS = frozenset({"tid", "owner", "holder"})
"""Attribute names that hold a task id, wherever they occur."""


class _Canon:
    """One canonicalisation: the task-id map of ``s`` and the recursive walk."""

    def __init__(self, s: System) -> None:
        self.s = s
        self.tids = {c.task.tid: ("cpu", i) for i, c in enumerate(s.cpus) if c.task is not None}
        self.tids.update(
            (c.nested.tid, ("nested", i)) for i, c in enumerate(s.cpus) if c.nested is not None
        )
        self.dead: dict[int, tuple[str, int]] = {}
        self.known: dict[int, tuple] = {}
        """State objects a local may alias, by identity: named by where they live."""
        for i, pcp in enumerate(s.pcp):
            self.known[id(pcp)] = ("pcp", i)
            for mt, lst in enumerate(pcp.lists):
                self.known[id(lst)] = ("pcp", i, mt)
        for order, lists in enumerate(s.zone.free_list):
            for mt, lst in enumerate(lists):
                self.known[id(lst)] = ("free_list", order, mt)

    def tid(self, tid: object) -> object:
        if not isinstance(tid, int) or isinstance(tid, bool):
            return self.value(tid)
        if tid in self.tids:
            return self.tids[tid]
        return self.dead.setdefault(tid, ("ended", len(self.dead)))

    def fields(self, obj: Any) -> tuple:
        if attrs.has(type(obj)):
            names = [a.name for a in attrs.fields(type(obj))]
        else:
            names = [n for cls in type(obj).__mro__ for n in getattr(cls, "__slots__", ())]
        return tuple(
            self.tid(getattr(obj, n)) if n in TID_FIELDS else self.value(getattr(obj, n))
            for n in names
            if n != "gen"
        )

    def task(self, t: Task) -> tuple:
        return (*self.fields(t), self.frames(t.gen))

    def frames(self, gen: object) -> tuple:
        out = []
        while isinstance(gen, GeneratorType) and gen.gi_frame is not None:
            frame = gen.gi_frame
            local = tuple(sorted((k, self.local(v)) for k, v in frame.f_locals.items()))
            out.append((gen.gi_code.co_qualname, frame.f_lasti, local))
            gen = gen.gi_yieldfrom
        return tuple(out)

    def local(self, v: Any) -> Any:
        """A generator local: a reference to a list or pageset of the state by where it
        lives (two states whose locals alias different lists have different futures)."""
        return self.known.get(id(v)) or self.value(v)

    def value(self, v: Any) -> Any:
        kind = type(v)
        if kind in _PLAIN:
            return v
        if kind is list or kind is tuple:
            if all(type(x) is int for x in v):
                return tuple(v)
            return tuple(map(self.value, v))
        if isinstance(v, Enum):
            return v.value
        if kind is dict:
            return tuple(sorted((self.value(k), self.value(x)) for k, x in v.items()))
        if kind is set or kind is frozenset:
            return tuple(sorted(map(self.value, v)))
        if kind is range:
            return ("range", v.start, v.stop, v.step)
        if kind is Task:
            return ("task", self.tid(v.tid))
        if kind is System:
            return "system"
        if kind is Profile or kind is Geometry:
            return "config"  # fixed for a whole search
        if isinstance(v, FunctionType):
            return ("function", v.__module__, v.__qualname__)  # a kernel function, by name
        if attrs.has(kind) or hasattr(kind, "__slots__"):
            return (kind.__name__, *self.fields(v))
        raise TypeError(f"canonical state: no rule for a {kind.__name__} ({v!r})")

    def system(self) -> tuple:
        s = self.s
        out = []
        for name in sorted(vars(s)):
            if name in HISTORY or name in ("profile", "geo", "mm"):  # mm: fixed per profile
                continue
            v = getattr(s, name)
            if name == "cpus":
                out.append(
                    tuple(
                        (
                            c.online,
                            c.work_pending,
                            *(None if t is None else self.task(t) for t in (c.task, c.nested)),
                        )
                        for c in v
                    )
                )
            else:
                out.append(self.value(v))
        return tuple(out)


PURE_ONLY = (
    "the exhaustive search needs the pure-Python build: compiled (mypyc) objects and generators "
    "hide their fields and frames from the walk; run it with PCPFUZZ_BUILD=pure"
)


def canonical_state(s: System) -> tuple:
    """``s`` as nested tuples, equal for two states with the same future (see the module)."""
    if BUILD.compiled:
        raise RuntimeError(PURE_ONLY)  # an empty walk would merge every state: an unsound proof
    return _Canon(s).system()


def state_key(s: System, extra: object = ()) -> bytes:
    """A 16-byte digest of ``canonical_state(s)`` and the explorer's own ``extra`` state."""
    return hashlib.blake2b(repr((canonical_state(s), extra)).encode(), digest_size=16).digest()
