"""What a proof explores: the operations it may start (with arguments, CPUs and how many times
over a run) and the optional action kinds, parsed from ``--ops``.

``--ops`` is a comma-separated list. An operation is ``NAME[(ARG,...)][@CPU+CPU...][*N]``:
``alloc_pages(0,MOVABLE)*2`` starts at most two order-0 MOVABLE allocations on any CPU,
``offline_pages@1*1`` one offline of any block on CPU1; arguments may be integers or migratetype
names, and a prefix of them stands for every argument tuple it starts (``alloc_pages(0)``: any
order-0 allocation). ``run``, ``signal`` and ``cpu`` add the ``Run``, ``Signal`` and CPU
hotplug actions; ``Step`` and drain work (``RunWork``) are always explored. ``spin`` stands
for ``SPIN_OPS``, the operations of the Promela model in ``benchmarks/promela``.
"""

from __future__ import annotations

import re

import attrs

from pcpfuzz.actions import Action, CpuDown, CpuUp, Run, RunWork, Signal, Start, Step
from pcpfuzz.constants import MT
from pcpfuzz.ops import OPS
from pcpfuzz.system import System

SPIN_OPS = "alloc_pages(0,MOVABLE)*2,free_pages,offline_pages*1"
"""Spin's operations: order-0 MOVABLE allocation (twice) and free, one offline."""
KINDS = {"run": (Run,), "signal": (Signal,), "cpu": (CpuDown, CpuUp)}
ALWAYS = (Step, RunWork)
_ITEM = re.compile(r"(?P<name>\w+)(?:\((?P<args>[^)]*)\))?(?:@(?P<cpus>[\d+]+))?(?:\*(?P<n>\d+))?")


class BadScope(ValueError):
    """An ``--ops`` list that does not parse, naming the culprit item."""


@attrs.frozen
class OpSpec:
    """Starts of ``name`` the proof may apply: with arguments starting with ``args`` (None: any
    enabled), on ``cpus``
    (None: any), at most ``limit`` times over a run (None: unbounded)."""

    name: str
    args: tuple[int, ...] | None = None
    cpus: tuple[int, ...] | None = None
    limit: int | None = None

    def matches(self, a: Start) -> bool:
        return (
            a.op == self.name
            and (self.args is None or a.args[: len(self.args)] == self.args)
            and (self.cpus is None or a.cpu in self.cpus)
        )

    def __str__(self) -> str:
        args = "" if self.args is None else f"({','.join(map(str, self.args))})"
        cpus = "" if self.cpus is None else "@" + "+".join(map(str, self.cpus))
        return f"{self.name}{args}{cpus}{'' if self.limit is None else f'*{self.limit}'}"


@attrs.frozen
class Scope:
    """The operations and the optional action kinds a proof explores."""

    ops: tuple[OpSpec, ...]
    kinds: tuple[type, ...] = ()

    def __str__(self) -> str:
        extra = [k for k, types in KINDS.items() if types[0] in self.kinds]
        return ",".join([*map(str, self.ops), *extra])

    @property
    def limited(self) -> tuple[int, ...]:
        """The indexes of the specs with a limit: the start counts the search tracks."""
        return tuple(i for i, op in enumerate(self.ops) if op.limit is not None)

    def actions(self, s: System, used: tuple[int, ...]) -> list[tuple[Action, int | None]]:
        """The enabled actions in scope, each with the index of the spec it uses (None for
        other actions); ``used`` counts the starts so far of each limited spec."""
        count = dict(zip(self.limited, used, strict=True))
        out: list[tuple[Action, int | None]] = []
        for a in s.enabled():
            if isinstance(a, Start):
                for i, spec in enumerate(self.ops):
                    if spec.matches(a) and (spec.limit is None or count[i] < spec.limit):
                        out.append((a, i))
                        break
            elif isinstance(a, (*ALWAYS, *self.kinds)):
                out.append((a, None))
        return out


def _arg(text: str, item: str) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        return int(MT[text.upper()])
    except KeyError:
        raise BadScope(
            f"--ops item {item!r}: argument {text!r} is not an integer or a migratetype"
        ) from None


def parse_scope(text: str, nr_cpus: int) -> Scope:
    """The scope ``text`` names (see the module); raises ``BadScope``."""
    text = text.replace("spin", SPIN_OPS) if re.search(r"\bspin\b", text) else text
    ops: list[OpSpec] = []
    kinds: list[type] = []
    for item in (x.strip() for x in re.split(r",(?![^(]*\))", text)):
        m = _ITEM.fullmatch(item)
        if not m:
            raise BadScope(f"--ops item {item!r} is not NAME[(ARGS)][@CPUS][*N]")
        name = m["name"]
        if name in KINDS and not any(m.group(g) for g in ("args", "cpus", "n")):
            kinds.extend(KINDS[name])
            continue
        if name not in OPS:
            known = ", ".join([*OPS, *KINDS, "spin"])
            raise BadScope(f"--ops item {item!r}: unknown operation {name!r} (known: {known})")
        args = (
            None
            if m["args"] is None
            else tuple(_arg(x, item) for x in m["args"].split(",") if x.strip())
        )
        cpus = None if m["cpus"] is None else tuple(int(c) for c in m["cpus"].split("+") if c)
        if cpus is not None and any(c >= nr_cpus for c in cpus):
            raise BadScope(f"--ops item {item!r}: there are only {nr_cpus} CPUs")
        ops.append(OpSpec(name, args, cpus, None if m["n"] is None else int(m["n"])))
    if not ops:
        raise BadScope("--ops names no operation")
    return Scope(tuple(ops), tuple(kinds))
