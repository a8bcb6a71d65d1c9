"""v6.12 pcplists of mm/page_alloc.c (modern-kernels §2.3, §2.4, §3.1-§3.3, §5.4): the owner
takes its ``pcp->lock`` with a trylock (preemption off, IRQs on) and falls back to the buddy;
nothing is cached on the page, so the flush reads each page's pageblock type under
``zone->lock``; ``pcp->high`` is auto-tuned by the owner between ``high_min`` and ``high_max``.

Steps follow §7.2. Steps inside a pcp section yield ``PREEMPT_OFF`` (RCU and kworkers wait
for them, an interrupt of the CPU may nest: its trylock fails, and it takes the fallback); every
``zone->lock`` site is ``spin_lock_irqsave`` (IRQs off while held or spun on). The model holds
``ZONE_RECLAIM_ACTIVE`` and ``ZONE_BELOW_HIGH`` clear (§5.4 allows it) and ``PCPF_FREE_HIGH_BATCH``
clear (no cacheinfo callback). ``System.cached_mt`` is ghost state here: the type of the pcp list
a page was put on (BUDDY's list relation); the kernel code never reads it."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT, mt_name
from pcpfuzz.dirty import CACHED, PCP, SIZING, landed, page_moved
from pcpfuzz.mm.buddy import get_pfnblock_migratetype
from pcpfuzz.mm.locking import spin_lock, spin_trylock, spin_unlock
from pcpfuzz.mm.pcp import allocated, pcp_use
from pcpfuzz.mm6.page_alloc import pcp_allowed_order, pop_pcplist, refill_pcplist
from pcpfuzz.mm612.buddy import __free_one_page, __rmqueue, split_large_buddy
from pcpfuzz.mm612.percpu import (
    PCP_BATCH_SCALE_MAX,
    PCPF_FREE_HIGH_BATCH,
    PCPF_PREV_FREE_HIGH_ORDER,
    PerCpuPages612,
)
from pcpfuzz.mm612.sizing import clamp
from pcpfuzz.state import PAGE_ALLOC_COSTLY_ORDER, PREEMPT_OFF, Task, TaskGen, Yielded
from pcpfuzz.violation import Hang

if TYPE_CHECKING:
    from pcpfuzz.system import System


def free_one_page(s: System, t: Task, pfn: int, order: int, to_tail: bool = False) -> TaskGen:
    """v6.12 ``free_one_page`` (§2.5): under ``zone->lock``, ``split_large_buddy`` (each
    pageblock's type read under the lock)."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    landed(s, pfn)
    split_large_buddy(s, pfn, order, to_tail)
    spin_unlock(s, t, s.zone_lock)
    return None


FALLBACK_NOTES = {
    "free": "free: pcp trylock failed, freed to the buddy",
    "allocation": "allocation: pcp trylock failed",
}


def trylock_failed(s: System, t: Task, pcp: PerCpuPages612, path: str, fallback: str) -> None:
    """``pcp_spin_trylock`` failed on the ``path`` (free or allocation) that falls back to
    ``fallback``: noted (and, for an interrupt, whether the task it interrupted holds the
    lock: the IRQ-reentry case of §1.3) and traced."""
    s.note(FALLBACK_NOTES[path])
    base = s.cpus[t.cpu].task
    if t.context == "irq" and base is not None and pcp.lock.owner == base.tid:
        s.note(f"IRQ {path}: trylock failed inside its CPU's own pcp section")
    if s.tracing:
        s.klog(t.cpu, f"pcp_spin_trylock(pcp{t.cpu}) failed: {fallback}")


def free_pcppages_bulk(
    s: System, t: Task, count: int, pcp: PerCpuPages612, pindex: int, cpu: int
) -> TaskGen:
    """v6.12 ``free_pcppages_bulk`` (§2.4), caller holds ``pcp->lock``: under ``zone->lock``,
    lists round robin from ``pindex`` over all lists, tails first, each page freed with its
    pageblock's type read now."""
    count = min(pcp.count, count)
    contended = s.zone_lock.owner is not None
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    if contended:
        pcp_use(s, t, pcp, "free_pcppages_bulk empties")
    pindex -= 1
    freed: list[int] = []
    while count > 0:
        if not any(pcp.lists):
            raise Hang(
                f"free_pcppages_bulk on CPU{cpu} finds every list empty: {count} more pages "
                f"to free, pcp count {pcp.count}"
            )
        while True:
            pindex = pindex + 1 if pindex + 1 < len(pcp.lists) else 0
            if pcp.lists[pindex]:
                break
        order = pcp.order_of(pindex)
        lst = pcp.lists[pindex]
        while True:
            pfn = lst.pop()
            page_moved(s, PCP, pfn, order, -1)
            mt = get_pfnblock_migratetype(s, pfn)
            count -= 1 << order
            pcp.count -= 1 << order
            __free_one_page(s, pfn, order, mt)
            freed.append(pfn)
            if count <= 0 or not lst:
                break
    spin_unlock(s, t, s.zone_lock)
    if s.tracing and freed:
        s.klog(t.cpu, f"free_pcppages_bulk(pcp{cpu}): pfns {freed} to the buddy")
    return None


def _clamp_high(pcp: PerCpuPages612) -> int:
    """``pcp->high = clamp(pcp->high, READ_ONCE(high_min), READ_ONCE(high_max))``."""
    pcp.high = clamp(pcp.high, pcp.high_min, pcp.high_max)
    pcp.clamped = True
    return pcp.high


def nr_pcp_high(pcp: PerCpuPages612, batch: int, free_high: bool) -> int:
    """v6.12 ``nr_pcp_high`` (§5.4): clamp ``high``; 0 when disabled; ``free_high`` lowers it;
    with auto-tuning on and the list full, raise it to hold ``free_count + batch``."""
    high = _clamp_high(pcp)
    if not high:
        return 0
    if free_high:
        pcp.high = max(high - (batch << PCP_BATCH_SCALE_MAX), pcp.high_min)
        return 0
    if pcp.high_min == pcp.high_max:
        return high
    if pcp.count >= high and pcp.high < pcp.free_count + batch:
        pcp.high = clamp(pcp.free_count + batch, pcp.high_min, pcp.high_max)
    return high


def nr_pcp_free(pcp: PerCpuPages612, batch: int, high: int, free_high: bool) -> int:
    """v6.12 ``nr_pcp_free`` (§2.3): ``min(count, batch << SCALE_MAX)`` for ``free_high``, 1
    when disabled or boot, else ``free_count`` clamped to [batch, high - batch] (6.12 clamp)."""
    if free_high:
        return min(pcp.count, batch << PCP_BATCH_SCALE_MAX)
    if high < batch:
        return 1
    return clamp(pcp.free_count, batch, high - batch)


def free_unref_page_commit(
    s: System, t: Task, pcp: PerCpuPages612, pfn: int, mt: int, order: int
) -> TaskGen:
    """v6.12 ``free_unref_page_commit`` (§2.3), under ``pcp->lock``: halve ``alloc_factor``,
    push, count, read ``batch``, the ``free_high`` flags and ``free_count`` (one step); then
    ``nr_pcp_high`` and any flush (the next)."""
    pcp.alloc_factor >>= 1
    pindex = pcp.pindex(mt, order)
    landed(s, pfn, must=True)
    pcp.lists[pindex].insert(0, pfn)
    s.cached_mt[pfn] = mt
    pcp.count += 1 << order
    page_moved(s, PCP | CACHED, pfn, order, 1)
    batch = pcp.batch
    free_high = False
    if 0 < order <= PAGE_ALLOC_COSTLY_ORDER:
        free_high = (
            pcp.free_count >= batch
            and bool(pcp.flags & PCPF_PREV_FREE_HIGH_ORDER)
            and (not pcp.flags & PCPF_FREE_HIGH_BATCH or pcp.count >= batch)
        )
        pcp.flags |= PCPF_PREV_FREE_HIGH_ORDER
    else:
        pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
    if pcp.free_count < batch << PCP_BATCH_SCALE_MAX:
        pcp.free_count += 1 << order
    yield PREEMPT_OFF
    pcp_use(s, t, pcp, "free_unref_page_commit reads high of")
    high = nr_pcp_high(pcp, batch, free_high)
    s.dirty |= SIZING
    if s.tracing:
        s.klog(
            t.cpu,
            f"free_unref_page_commit(pfn {pfn}, order {order}): pcp{t.cpu}.lists[{pindex}], "
            f"count {pcp.count}, high {high}{' (free_high)' if free_high else ''}",
        )
    if pcp.count >= high:
        if free_high:
            s.note("free_high flush")
        yield from free_pcppages_bulk(
            s, t, nr_pcp_free(pcp, batch, high, free_high), pcp, pindex, t.cpu
        )
    return None


def free_unref_page(s: System, t: Task, pfn: int, order: int) -> TaskGen:
    """v6.12 ``free_unref_page`` (§2.3): the lockless type read (nothing cached); ISOLATE
    straight to ``free_one_page``, CMA and HIGHATOMIC on MOVABLE; then the trylock: commit, or
    ``free_one_page`` when this CPU's ``pcp->lock`` is held."""
    mt = get_pfnblock_migratetype(s, pfn)
    if s.tracing:
        s.klog(t.cpu, f"free_unref_page(pfn {pfn}, order {order}): mt {mt_name(mt)}")
    yield None
    if mt >= MIGRATE_PCPTYPES:
        if mt == MT.ISOLATE:
            s.note("page freed straight to the buddy: ISOLATE")
            yield from free_one_page(s, t, pfn, order)
            return None
        mt = MT.MOVABLE
    pcp = s.pcp[t.cpu]
    if spin_trylock(t, pcp.lock):
        yield from free_unref_page_commit(s, t, pcp, pfn, mt, order)
        spin_unlock(s, t, pcp.lock)
    else:
        trylock_failed(s, t, pcp, "free", f"free_one_page(pfn {pfn})")
        yield from free_one_page(s, t, pfn, order)
    return None


def free_unref_folios(s: System, t: Task, pfns: tuple[int, ...]) -> TaskGen:
    """v6.12 ``free_unref_folios`` (§2.3) for order-0 folios: per folio a lockless type read
    (possibly while holding this CPU's ``pcp->lock``), ISOLATE to the buddy (dropping the pcp
    lock), else commit under the lock taken by trylock once (no relock every 32 pages). A step
    between folios over-approximates the kernel's interleavings (§7.2 item 3)."""
    pcp = s.pcp[t.cpu]
    locked = False
    for i, pfn in enumerate(pfns):
        if i:
            yield PREEMPT_OFF if locked else None
            if locked:
                pcp_use(s, t, pcp, "free_unref_folios commits to")
        mt = get_pfnblock_migratetype(s, pfn)
        if not locked or mt == MT.ISOLATE:
            if locked:
                spin_unlock(s, t, pcp.lock)
                locked = False
            if mt == MT.ISOLATE:
                s.note("page freed straight to the buddy: ISOLATE")
                yield from free_one_page(s, t, pfn, 0)
                continue
            pcp = s.pcp[t.cpu]
            if not spin_trylock(t, pcp.lock):
                trylock_failed(s, t, pcp, "free", f"free_one_page(pfn {pfn})")
                yield from free_one_page(s, t, pfn, 0)
                continue
            locked = True
        yield from free_unref_page_commit(
            s, t, pcp, pfn, mt if mt < MIGRATE_PCPTYPES else MT.MOVABLE, 0
        )
    if locked:
        spin_unlock(s, t, pcp.lock)
    return None


def nr_pcp_alloc(pcp: PerCpuPages612, order: int) -> int:
    """v6.12 ``nr_pcp_alloc`` (§5.4): clamp ``high``; 1 when disabled or boot; else the
    refill grows ``high`` (auto-tuning on) and, for order 0, doubles through ``alloc_factor``
    within the room left under ``high``."""
    base = pcp.batch
    high = _clamp_high(pcp)
    if high < base:
        return 1
    batch = base if order else base << pcp.alloc_factor
    if pcp.high_min != pcp.high_max:
        high = pcp.high = min(high + batch, pcp.high_max)
    if not order:
        max_nr_alloc = max(high - pcp.count - base, base)
        if batch <= max_nr_alloc and pcp.alloc_factor < PCP_BATCH_SCALE_MAX:
            pcp.alloc_factor += 1
        batch = min(batch, max_nr_alloc)
    if batch > 1:
        batch = max(batch >> order, 2)
    return batch


def rmqueue_bulk(
    s: System, t: Task, order: int, count: int, lst: list[int], mt: int
) -> Generator[Yielded, None, int]:
    """v6.12 ``rmqueue_bulk`` (§3.3) under the nested ``zone->lock``: up to ``count`` blocks
    to the list tail; no counter code (``__rmqueue`` accounts per list)."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    taken = 0
    for _ in range(count):
        pfn = __rmqueue(s, order, mt)
        if pfn is None:
            break
        lst.append(pfn)
        s.cached_mt[pfn] = mt
        taken += 1
        page_moved(s, PCP | CACHED, pfn, order, 1)
    spin_unlock(s, t, s.zone_lock)
    return taken


def rmqueue_pcplist(s: System, t: Task, order: int, mt: int) -> TaskGen:
    """v6.12 ``rmqueue_pcplist`` + ``__rmqueue_pcplist`` (§3.2): trylock (None on failure);
    halve ``free_count``; an empty list is refilled with ``nr_pcp_alloc`` blocks, then counted,
    then popped, each its own step inside one ``pcp->lock`` hold."""
    pcp = s.pcp[t.cpu]
    if not spin_trylock(t, pcp.lock):
        trylock_failed(s, t, pcp, "allocation", "rmqueue_buddy")
        return None
    pcp.free_count >>= 1
    lst = pcp.lists[pcp.pindex(mt, order)]
    if not lst:
        batch = nr_pcp_alloc(pcp, order)
        s.dirty |= SIZING
        yield PREEMPT_OFF
        refill = refill_pcplist(s, t, pcp, lst, order, batch, mt, rmqueue_bulk, PREEMPT_OFF)
        if not (yield from refill):
            return None
        pcp_use(s, t, pcp, "__rmqueue_pcplist pops from")
    return pop_pcplist(s, t, pcp, lst, order)


def rmqueue_buddy(s: System, t: Task, order: int, mt: int) -> TaskGen:
    """v6.12 ``rmqueue_buddy`` (§3.1): one block from ``__rmqueue`` under ``zone->lock``."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    pfn = __rmqueue(s, order, mt)
    spin_unlock(s, t, s.zone_lock)
    return pfn


def alloc_pages(s: System, t: Task, order: int, mt: int, holder: int | None = None) -> TaskGen:
    """v6.12 ``rmqueue`` (§3.1) for ``__alloc_pages``: the pcplists for pcp orders (every type,
    CMA included), the buddy when they give nothing (a failed trylock included)."""
    pfn = None
    if pcp_allowed_order(s, order):
        pfn = yield from rmqueue_pcplist(s, t, order, mt)
        if pfn is None:
            yield None
    if pfn is None:
        pfn = yield from rmqueue_buddy(s, t, order, mt)
    return allocated(s, t, pfn, order, mt, holder)


def __free_pages(s: System, t: Task, pfn: int, order: int) -> TaskGen:
    """``free_the_page``: pcp orders through ``free_unref_page``; others through v6.12
    ``__free_pages_ok``, which is ``free_one_page`` (no lockless type read)."""
    if pcp_allowed_order(s, order):
        yield from free_unref_page(s, t, pfn, order)
    else:
        yield from free_one_page(s, t, pfn, order)
    return None
