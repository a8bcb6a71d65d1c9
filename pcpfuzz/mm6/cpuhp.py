"""v6.1 CPU hotplug callbacks of mm/page_alloc.c (modern-kernels §4.3)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.mm6.drain import drain_pages_zone
from pcpfuzz.mm6.pageset import zone_pcp_update
from pcpfuzz.state import Task, TaskGen, Wait

if TYPE_CHECKING:
    from pcpfuzz.system import System


def cpu_hotplug_allowed(s: System, cpu: int) -> bool:
    """The callbacks take ``pcp_batch_high_lock``, the CPU's ``pcp->lock`` and ``zone->lock``;
    the model runs them as one action, enabled only when none of them is held."""
    return (
        s.pcp_batch_high_lock.owner is None
        and s.pcp[cpu].lock.owner is None
        and s.zone_lock.owner is None
    )


def _run_callback(gen: TaskGen) -> None:
    """Run a callback to its end; ``cpu_hotplug_allowed`` guarantees it never waits."""
    for y in gen:
        if isinstance(y, Wait):
            raise RuntimeError(f"CPU hotplug callback blocked in {y.describe()}")


def _cpuhp_task(cpu: int) -> Task:
    return Task(-1, cpu, "cpuhp", (), None)  # type: ignore[arg-type]


def page_alloc_cpu_dead(s: System, cpu: int) -> None:
    """``page_alloc_cpu_dead``: drain the dead CPU's pcplists, then ``zone_pcp_update(zone, 0)``
    (high follows the number of online CPUs)."""
    t = _cpuhp_task(cpu)
    _run_callback(drain_pages_zone(s, t, cpu))
    if s.zone.present_pages:
        _run_callback(zone_pcp_update(s, t, 0))


def page_alloc_cpu_online(s: System, cpu: int) -> None:
    """``page_alloc_cpu_online``: ``zone_pcp_update(zone, 1)``. The model marks the CPU online
    before the callback, which stands for the ``+ 1``."""
    if s.zone.present_pages:
        _run_callback(zone_pcp_update(s, _cpuhp_task(cpu), 0))
