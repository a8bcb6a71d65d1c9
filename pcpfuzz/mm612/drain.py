"""v6.12 draining (modern-kernels §4): ``drain_pages_zone`` frees in chunks of at most
``batch << CONFIG_PCP_BATCH_SCALE_MAX`` pages, reading the count under ``pcp->lock`` (plain
``spin_lock``: IRQs on); ``__drain_all_pages`` runs every drain itself; the vmstat worker's
``decay_pcp_high`` lowers ``pcp->high`` locklessly and frees the excess."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.dirty import SIZING
from pcpfuzz.mm.locking import spin_unlock
from pcpfuzz.mm.pcp import pcp_use
from pcpfuzz.mm6.drain import run_drain_all_pages
from pcpfuzz.mm6.page_alloc import pcp_spin_lock
from pcpfuzz.mm612.page_alloc import free_pcppages_bulk
from pcpfuzz.mm612.percpu import PCP_BATCH_SCALE_MAX
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def drain_pages_zone(s: System, t: Task, cpu: int) -> TaskGen:
    """v6.12 ``drain_pages_zone(cpu, zone)`` (§4.1): lock, read ``count``, free
    ``min(count, batch << SCALE_MAX)``, unlock (one step), until the count read is 0. At that
    last hold the pcp is empty under its lock (DRAIN-LOCKED, §8.3)."""
    pcp = s.pcp[cpu]
    chunk = False
    while True:
        if chunk:
            pcp_use(s, t, pcp, "drain_pages_zone takes the lock of")
        yield from pcp_spin_lock(s, t, pcp, "drain_pages_zone", irqs_on=True)
        chunk = True
        count = pcp.count
        if count:
            to_drain = min(count, pcp.batch << PCP_BATCH_SCALE_MAX)
            yield from free_pcppages_bulk(s, t, to_drain, pcp, 0, cpu)
            count -= to_drain
        elif any(pcp.lists):
            s.bug("DRAIN-LOCKED", f"drain_pages_zone(CPU{cpu}) read count 0, lists hold pages")
        spin_unlock(s, t, pcp.lock)
        if not count:
            return None
        s.note("drain_pages_zone drained in more than one chunk")
        yield None


def drain_local_pages(s: System, t: Task) -> TaskGen:
    """``drain_local_pages(zone)``: ``drain_pages_zone`` of this CPU (the model has one zone)."""
    yield from drain_pages_zone(s, t, t.cpu)
    return None


def __drain_all_pages(s: System, t: Task, zone: bool, force: bool) -> TaskGen:
    """v6.12 ``__drain_all_pages(zone, force_all_cpus)`` (§4.2, as v6.1): 6.1's
    (``run_drain_all_pages``: under ``pcpu_drain_mutex``, a lockless count read per online CPU
    unless forced, then each selected CPU drained from this task) with v6.12
    ``drain_pages_zone``."""
    yield from run_drain_all_pages(s, t, zone, force, drain_pages_zone)
    return None


def drain_all_pages(s: System, t: Task, zone: bool = True) -> TaskGen:
    """``drain_all_pages(zone)``: ``__drain_all_pages(zone, false)``."""
    yield from __drain_all_pages(s, t, zone, force=False)
    return None


def decay_pcp_high(s: System, t: Task) -> TaskGen:
    """``decay_pcp_high(zone, pcp)`` from ``refresh_cpu_vm_stats`` on this CPU (§5.4, §7.2
    item 11): locklessly lower ``high`` towards ``high_min`` (by an eighth, at most to
    ``count - (batch << SCALE_MAX)``) and compute ``count - high`` (one step); free that many
    under ``spin_lock(pcp->lock)`` (the next). The flush is at most ``batch << SCALE_MAX``
    pages (PCP-BOUNDED, §8.3). Returns the kernel's "more work" count."""
    pcp = s.pcp[t.cpu]
    if not s.zone.present_pages:
        return 0
    high_min, batch = pcp.high_min, pcp.batch
    todo = 0
    if pcp.high > high_min:
        pcp.high = max(
            pcp.count - (batch << PCP_BATCH_SCALE_MAX), pcp.high - (pcp.high >> 3), high_min
        )
        s.dirty |= SIZING
        todo += pcp.high > high_min
    to_drain = pcp.count - pcp.high
    if s.tracing:
        s.klog(t.cpu, f"decay_pcp_high(pcp{t.cpu}): high {pcp.high}, to drain {to_drain}")
    if to_drain > 0:
        if to_drain > batch << PCP_BATCH_SCALE_MAX:
            s.bug(
                "PCP-BOUNDED",
                f"decay_pcp_high on CPU{t.cpu} frees {to_drain} pages, more than batch {batch} "
                f"<< {PCP_BATCH_SCALE_MAX}",
            )
        s.note("decay_pcp_high flushed")
        yield None
        pcp_use(s, t, pcp, "decay_pcp_high takes the lock of")
        yield from pcp_spin_lock(s, t, pcp, "decay_pcp_high", irqs_on=True)
        yield from free_pcppages_bulk(s, t, to_drain, pcp, 0, t.cpu)
        spin_unlock(s, t, pcp.lock)
        todo += 1
    return todo
