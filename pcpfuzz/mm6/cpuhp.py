"""v6.1 CPU hotplug (modern-kernels §4.3, §7.2 item 12): a CPU goes down or up as a task, run
on that CPU's slot for the control CPU's cpuhp thread, with the page allocator's
``CPUHP_PAGE_ALLOC`` callbacks at the kernel's step boundaries."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pcpfuzz.mm.locking import mutex_lock, mutex_unlock
from pcpfuzz.mm6.drain import drain_pages_zone
from pcpfuzz.mm6.pageset import zone_pcp_update
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System

CPUHP_OPS = ("cpu_down", "cpu_up")
"""The task names of a CPU going down and coming up."""


def cpu_hotplug_allowed(s: System, _cpu: int) -> bool:
    """CPU hotplug operations are serialised (``cpu_maps_update_begin``): one at a time."""
    return not any(t.op in CPUHP_OPS for t in s.tasks())


def run_page_alloc_cpu_dead(
    s: System,
    t: Task,
    cpu: int,
    drain_pages_zone: Callable[[System, Task, int], TaskGen],
    zone_pcp_update: Callable[[System, Task, int], TaskGen],
) -> TaskGen:
    """6.1/6.12 ``page_alloc_cpu_dead`` (§4.3) with a kernel's callees: ``drain_pages(cpu)``
    (the locked drain of §4.1), then ``zone_pcp_update(zone, 0)`` for the populated zone (high
    follows the online CPUs)."""
    yield from drain_pages_zone(s, t, cpu)
    if s.zone.present_pages:
        yield None
        yield from zone_pcp_update(s, t, 0)
    return None


def page_alloc_cpu_dead(s: System, t: Task, cpu: int) -> TaskGen:
    """v6.1 ``page_alloc_cpu_dead`` (§4.3): ``run_page_alloc_cpu_dead`` with the v6.1 drain and
    ``zone_pcp_update``."""
    yield from run_page_alloc_cpu_dead(s, t, cpu, drain_pages_zone, zone_pcp_update)
    return None


def page_alloc_cpu_online(s: System, t: Task, _cpu: int) -> TaskGen:
    """``page_alloc_cpu_online``: ``zone_pcp_update(zone, 1)``, the ``+ 1`` because the CPU is
    not in the online mask yet (``CPUHP_PAGE_ALLOC`` is a PREPARE-stage callback)."""
    if s.zone.present_pages:
        yield from zone_pcp_update(s, t, 1)
    return None


def run_cpu_hotplug(
    s: System,
    t: Task,
    cpu: int,
    up: bool,
    dead: Callable[[System, Task, int], TaskGen],
    online: Callable[[System, Task, int], TaskGen],
) -> TaskGen:
    """A sysfs CPU offline or online (``lock_device_hotplug_sysfs``, which excludes memory
    hotplug, then ``cpus_write_lock``) with a kernel's ``CPUHP_PAGE_ALLOC`` callbacks: down,
    the CPU stops, then ``dead`` runs; up, ``online`` runs, then the CPU starts."""
    yield from mutex_lock(s, t, s.device_hotplug_lock)
    yield None
    if up:
        yield from online(s, t, cpu)
        s.cpus[cpu].online = True
    else:
        s.cpus[cpu].online = False
        yield None
        yield from dead(s, t, cpu)
    if s.tracing:
        s.klog(t.cpu, f"CPU{cpu} {'online' if up else 'offline'}: page_alloc callbacks done")
    mutex_unlock(s, t, s.device_hotplug_lock)
    return 0


def cpu_hotplug(s: System, t: Task, cpu: int, up: bool) -> TaskGen:
    """v6.1 CPU hotplug: ``run_cpu_hotplug`` with the v6.1 callbacks."""
    return (yield from run_cpu_hotplug(s, t, cpu, up, page_alloc_cpu_dead, page_alloc_cpu_online))
