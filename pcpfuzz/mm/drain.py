"""Draining pcplists: per-CPU drains, drain work and ``drain_all_pages`` (spec §7)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.mm.locking import mutex_lock, mutex_unlock, wait_until
from pcpfuzz.mm.pcp import free_pcppages_bulk
from pcpfuzz.state import Task, TaskGen, WorkWait

if TYPE_CHECKING:
    from pcpfuzz.system import System


def drain_pages_zone(s: System, cpu: int) -> None:
    """``drain_pages_zone``: flush ``cpu``'s whole pcplist for the zone, with IRQs off."""
    pcp = s.pcp[cpu]
    if pcp.count:
        free_pcppages_bulk(s, cpu, pcp.count, pcp)


def drain_local_pages(s: System, cpu: int) -> None:
    """``drain_local_pages(zone)`` on ``cpu`` (the model has one zone)."""
    drain_pages_zone(s, cpu)


def drain_local_pages_wq(s: System, cpu: int) -> None:
    """The ``pcpu_drain`` work item, run on ``cpu`` between its task's IRQ-on steps."""
    s.cpus[cpu].work_pending = False
    if s.tracing:
        s.klog(cpu, f"drain_local_pages_wq: pcp{cpu} count {s.pcp[cpu].count}")
    drain_local_pages(s, cpu)


def page_alloc_cpu_dead(s: System, cpu: int) -> None:
    """``page_alloc_cpu_dead``: a surviving CPU drains the dead CPU's pcplists (spec §7.4)."""
    drain_pages_zone(s, cpu)


def pcpu_drain_mutex_lock(s: System, t: Task, zone: bool) -> TaskGen:
    """``__drain_all_pages``'s locking: ``mutex_trylock(&pcpu_drain_mutex)``, and when it
    fails, return without a zone (False) or ``mutex_lock`` with one. True when taken."""
    m = s.pcpu_drain_mutex
    if m.owner is None:
        m.owner = t.tid
        return True
    if not zone:
        s.note("drain_all_pages(NULL) gave up: pcpu_drain_mutex busy")
        return False
    yield from mutex_lock(s, t, m)
    return True


def __drain_all_pages(s: System, t: Task, zone: bool, force: bool) -> TaskGen:
    """``__drain_all_pages(zone, force_all_cpus)`` (spec §7.2, §7.3): under ``pcpu_drain_mutex``,
    read each online CPU's count racily (one step each) unless forced, post the drain work,
    and wait for it. Without a zone it is a trylock that gives up when the mutex is busy."""
    if not (yield from pcpu_drain_mutex_lock(s, t, zone)):
        return None
    yield None
    cpus: list[int] = []
    for cpu in range(s.geo.nr_cpus):
        if not s.cpus[cpu].online:
            continue
        if force:
            cpus.append(cpu)
            continue
        if s.pcp[cpu].count:
            cpus.append(cpu)
        else:
            s.note("drain_all_pages skipped a CPU")
            if s.tracing:
                s.klog(t.cpu, f"drain_all_pages: CPU{cpu} count 0, not drained")
        yield None
    posted = tuple(c for c in cpus if s.cpus[c].online)
    for cpu in posted:
        s.cpus[cpu].work_pending = True
    if s.tracing:
        kind = "forced " if force else ""
        s.klog(t.cpu, f"{kind}drain_all_pages: drain work posted to CPUs {list(posted)}")
    yield from wait_until(s, WorkWait(posted))
    mutex_unlock(s, t, s.pcpu_drain_mutex)
    return None


def drain_all_pages(s: System, t: Task, zone: bool = True) -> TaskGen:
    """``drain_all_pages(zone)``: ``__drain_all_pages(zone, false)``."""
    yield from __drain_all_pages(s, t, zone, force=False)
    return None
