"""v6.12 CPU hotplug (modern-kernels §4.3): v6.1's task (``run_cpu_hotplug``) with the v6.12
drain and ``zone_pcp_update`` as the ``CPUHP_PAGE_ALLOC`` callbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.mm6.cpuhp import run_cpu_hotplug, run_page_alloc_cpu_dead
from pcpfuzz.mm612.drain import drain_pages_zone
from pcpfuzz.mm612.pageset import zone_pcp_update
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def page_alloc_cpu_dead(s: System, t: Task, cpu: int) -> TaskGen:
    """v6.12 ``page_alloc_cpu_dead`` (§4.3): 6.1's (``run_page_alloc_cpu_dead``: drain the dead
    CPU's pcplists, then ``zone_pcp_update(zone, 0)``) with the v6.12 drain (in chunks) and
    ``zone_pcp_update``."""
    yield from run_page_alloc_cpu_dead(s, t, cpu, drain_pages_zone, zone_pcp_update)
    return None


def page_alloc_cpu_online(s: System, t: Task, _cpu: int) -> TaskGen:
    """``page_alloc_cpu_online``: ``zone_pcp_update(zone, 1)`` (a PREPARE-stage callback: the
    CPU is not in the online mask yet)."""
    if s.zone.present_pages:
        yield from zone_pcp_update(s, t, 1)
    return None


def cpu_hotplug(s: System, t: Task, cpu: int, up: bool) -> TaskGen:
    """v6.12 CPU hotplug: ``run_cpu_hotplug`` with the v6.12 callbacks."""
    return (yield from run_cpu_hotplug(s, t, cpu, up, page_alloc_cpu_dead, page_alloc_cpu_online))
