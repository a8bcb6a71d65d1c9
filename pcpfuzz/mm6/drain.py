"""v6.1 draining (modern-kernels §4): any CPU drains any CPU's pcplist under that pcplist's
``pcp->lock``; ``__drain_all_pages`` runs every drain itself (no work items); CPU hotplug."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pcpfuzz.mm.drain import pcpu_drain_mutex_lock
from pcpfuzz.mm.locking import mutex_unlock, spin_unlock
from pcpfuzz.mm.pcp import pcp_use
from pcpfuzz.mm6.page_alloc import free_pcppages_bulk, pcp_spin_lock
from pcpfuzz.state import IRQ_OFF, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def owner_section(s: System, cpu: int) -> bool:
    """Whether ``cpu`` is inside an owner section (§7.1): its task, or the context nested over
    it, holds its ``pcp->lock`` other than as a drainer."""
    owner = s.pcp[cpu].lock.owner
    c = s.cpus[cpu]
    return any(t is not None and owner == t.tid and not t.pcp_draining for t in (c.task, c.nested))


def drain_pages_zone(s: System, t: Task, cpu: int) -> TaskGen:
    """v6.1 ``drain_pages_zone(cpu, zone)`` (§4.1): a lockless ``if (pcp->count)`` (its own
    step), then ``spin_lock_irqsave(&pcp->lock)`` and ``free_pcppages_bulk(pcp->count)``.

    DRAIN-LOCKED (§8.3) is checked where the call can return without the point it promises:
    a count of 0 read while ``cpu`` is inside an owner section (the locked path ends empty
    with the owner excluded)."""
    pcp = s.pcp[cpu]
    if not pcp.count:
        s.note("drain_pages_zone read count 0")
        if owner_section(s, cpu):
            pages = [p for lst in pcp.lists for p in lst]
            s.bug(
                "DRAIN-LOCKED",
                f"CPU{t.cpu} drain_pages_zone({cpu}) read count 0 and returned while CPU{cpu} "
                f"is inside an owner section (its lists hold {pages})",
            )
        return None
    yield None
    pcp_use(s, t, pcp, "drain_pages_zone takes the lock of")
    yield from pcp_spin_lock(s, t, pcp, "drain_pages_zone")
    t.pcp_draining = True
    yield IRQ_OFF
    pcp_use(s, t, pcp, "drain_pages_zone frees the lists of")
    yield from free_pcppages_bulk(s, t, pcp.count, pcp, 0, cpu)
    t.pcp_draining = False
    spin_unlock(s, t, pcp.lock)
    return None


def drain_local_pages(s: System, t: Task) -> TaskGen:
    """``drain_local_pages(zone)``: ``drain_pages_zone`` of this CPU (the model has one zone)."""
    yield from drain_pages_zone(s, t, t.cpu)
    return None


def run_drain_all_pages(
    s: System,
    t: Task,
    zone: bool,
    force: bool,
    drain_pages_zone: Callable[[System, Task, int], TaskGen],
) -> TaskGen:
    """6.1/6.12 ``__drain_all_pages(zone, force_all_cpus)`` (§4.2) with a kernel's
    ``drain_pages_zone``: under ``pcpu_drain_mutex`` (a trylock that gives up without a zone),
    read each online CPU's count locklessly (one step each) unless forced, then drain every
    selected CPU, one after another, from this task."""
    if not (yield from pcpu_drain_mutex_lock(s, t, zone)):
        return None
    yield None
    cpus: list[int] = []
    for cpu, c in enumerate(s.cpus):
        if not c.online:
            continue
        if force or s.pcp[cpu].count:
            cpus.append(cpu)
        else:
            s.note("drain_all_pages skipped a CPU")
        if not force:
            yield None
    if s.tracing:
        s.klog(t.cpu, f"{'forced ' if force else ''}drain_all_pages: draining CPUs {cpus}")
    for cpu in cpus:
        yield from drain_pages_zone(s, t, cpu)
        yield None
    mutex_unlock(s, t, s.pcpu_drain_mutex)
    return None


def __drain_all_pages(s: System, t: Task, zone: bool, force: bool) -> TaskGen:
    """v6.1 ``__drain_all_pages(zone, force_all_cpus)`` (§4.2): ``run_drain_all_pages`` with the
    v6.1 ``drain_pages_zone``."""
    yield from run_drain_all_pages(s, t, zone, force, drain_pages_zone)
    return None


def drain_all_pages(s: System, t: Task, zone: bool = True) -> TaskGen:
    """``drain_all_pages(zone)``: ``__drain_all_pages(zone, false)``."""
    yield from __drain_all_pages(s, t, zone, force=False)
    return None
