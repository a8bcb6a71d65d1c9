"""The actions a driver applies to ``System``: the one narrow door into the model."""

import attrs

from pcpfuzz.ops import CONTEXT_LABEL, NESTED_OPS, OPS


def _call(name: str, args: tuple[int, ...]) -> str:
    """Operation ``name`` called with ``args``, in words."""
    op = OPS.get(name)
    return op.describe(args) if op else f"{name}{args}"


@attrs.frozen
class Start:
    """Start operation ``op`` with ``args`` on an idle ``cpu``; runs its first atomic step."""

    cpu: int
    op: str
    args: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"CPU{self.cpu} start {_call(self.op, self.args)}"


@attrs.frozen
class Interrupt:
    """Interrupt busy ``cpu`` between two steps of its task and start ``op`` with ``args`` in a
    context nested over it (modern-kernels §1.3, §7.1): a hardirq that frees or allocates
    (``pcpfuzz.ops.NESTED_OPS``), or the vmstat kworker preempting the task. ``cpu`` runs only
    that context until it ends; its first atomic step runs now."""

    cpu: int
    op: str
    args: tuple[int, ...] = ()

    def __str__(self) -> str:
        label = CONTEXT_LABEL[NESTED_OPS.get(self.op, "irq")]
        return f"CPU{self.cpu} <{label}> {_call(self.op, self.args)}"


@attrs.frozen
class Step:
    """Run the next atomic step of the task on ``cpu``."""

    cpu: int

    def __str__(self) -> str:
        return f"CPU{self.cpu} step"


@attrs.frozen
class Run:
    """Run the task on ``cpu`` (and its own drain work while it sleeps) until it ends or blocks."""

    cpu: int

    def __str__(self) -> str:
        return f"CPU{self.cpu} run"


@attrs.frozen
class RunWork:
    """Run ``cpu``'s pending ``pcpu_drain`` work item (``drain_local_pages_wq``)."""

    cpu: int

    def __str__(self) -> str:
        return f"CPU{self.cpu} drain work"


@attrs.frozen
class Signal:
    """Deliver a signal to the task on ``cpu`` (offline checks ``signal_pending``)."""

    cpu: int

    def __str__(self) -> str:
        return f"CPU{self.cpu} signal"


@attrs.frozen
class CpuDown:
    """Take ``cpu`` offline; a surviving CPU runs ``page_alloc_cpu_dead`` (spec §7.4)."""

    cpu: int

    def __str__(self) -> str:
        return f"CPU{self.cpu} down"


@attrs.frozen
class CpuUp:
    """Bring ``cpu`` back online."""

    cpu: int

    def __str__(self) -> str:
        return f"CPU{self.cpu} up"


Action = Start | Step | Run | RunWork | Signal | CpuDown | CpuUp | Interrupt
ACTION_TYPES: dict[str, type] = {
    "start": Start,
    "step": Step,
    "run": Run,
    "work": RunWork,
    "signal": Signal,
    "cpu_down": CpuDown,
    "cpu_up": CpuUp,
    "irq": Interrupt,
}
ACTION_KIND: dict[type, str] = {cls: kind for kind, cls in ACTION_TYPES.items()}
