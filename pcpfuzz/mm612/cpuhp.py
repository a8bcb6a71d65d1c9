"""v6.12 CPU hotplug callbacks of mm/page_alloc.c (modern-kernels §4.3), as v6.1's with the
v6.12 drain and ``zone_pcp_update``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.mm6.cpuhp import _cpuhp_task, _run_callback
from pcpfuzz.mm612.drain import drain_pages_zone
from pcpfuzz.mm612.pageset import zone_pcp_update

if TYPE_CHECKING:
    from pcpfuzz.system import System


def page_alloc_cpu_dead(s: System, cpu: int) -> None:
    """``page_alloc_cpu_dead``: drain the dead CPU's pcplists (v6.12 chunks), then
    ``zone_pcp_update(zone, 0)``."""
    t = _cpuhp_task(cpu)
    _run_callback(drain_pages_zone(s, t, cpu))
    if s.zone.present_pages:
        _run_callback(zone_pcp_update(s, t, 0))


def page_alloc_cpu_online(s: System, cpu: int) -> None:
    """``page_alloc_cpu_online``: ``zone_pcp_update(zone, 1)``; the model marks the CPU online
    before the callback, which stands for the ``+ 1``."""
    if s.zone.present_pages:
        _run_callback(zone_pcp_update(s, _cpuhp_task(cpu), 0))
