"""v6.1 pcplists of mm/page_alloc.c (modern-kernels §1-§3): the owner takes its ``pcp->lock``
with a trylock (IRQs off) and falls back to the buddy; lists per (order, type) plus the THP
list, ``count`` in pages; the bulk free unlinks and frees under one ``zone->lock`` hold.

Steps follow §7.2: the free's type read, then the locked push, then the sizing reads and any
flush; the allocation's ``free_factor`` step, refill under the nested ``zone->lock``, count
update and pop are separate steps, so lockless readers see each intermediate state."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT, SWAP_CLUSTER_MAX, mt_name
from pcpfuzz.dirty import CACHED, FREECOUNT, PCP, landed, page_moved
from pcpfuzz.mm.buddy import __mod_zone_freepage_state, __rmqueue, get_pfnblock_migratetype
from pcpfuzz.mm.locking import spin_lock, spin_trylock, spin_unlock
from pcpfuzz.mm.pcp import allocated, pcp_use
from pcpfuzz.mm6.buddy import __free_one_page, __free_pages_ok, free_one_page
from pcpfuzz.state import (
    IRQ_OFF,
    NR_PCP_LISTS,
    PAGE_ALLOC_COSTLY_ORDER,
    PerCpuPages61,
    Task,
    TaskGen,
    Yielded,
)
from pcpfuzz.violation import Hang

if TYPE_CHECKING:
    from pcpfuzz.mm612.percpu import PerCpuPages612
    from pcpfuzz.system import System


def pcp_allowed_order(s: System, order: int) -> bool:
    """``pcp_allowed_order`` (§1.2): orders 0..3 and the THP order (``pageblock_order``)."""
    return order <= PAGE_ALLOC_COSTLY_ORDER or order == s.geo.pageblock_order


def free_unref_page_prepare(s: System, t: Task, pfn: int, order: int) -> None:
    """``free_unref_page_prepare`` (§2.1): the lockless pageblock-type read, cached on the page
    (``set_pcppage_migratetype``)."""
    mt = get_pfnblock_migratetype(s, pfn)
    s.cached_mt[pfn] = mt
    s.dirty |= CACHED
    if s.tracing:
        s.klog(t.cpu, f"free_unref_page_prepare(pfn {pfn}, order {order}): mt {mt_name(mt)}")


def nr_pcp_high(pcp: PerCpuPages61, free_high: bool) -> int:
    """``nr_pcp_high`` (§2.1); the model has no ZONE_RECLAIM_ACTIVE."""
    high = pcp.high
    return 0 if high == 0 or free_high else high


def nr_pcp_free(pcp: PerCpuPages61, high: int, batch: int, free_high: bool) -> int:
    """``nr_pcp_free`` (§2.1): everything for ``free_high``, 1 when disabled or boot, else
    ``batch << free_factor`` clamped to [batch, high - batch] (6.1's ``clamp``, §1.4)."""
    if free_high:
        return pcp.count
    if high < batch:
        return 1
    min_nr_free, max_nr_free = batch, high - batch
    batch <<= pcp.free_factor
    if batch < max_nr_free:
        pcp.free_factor += 1
    return min(max(batch, min_nr_free), max_nr_free)


def free_pcppages_bulk(
    s: System, t: Task, count: int, pcp: PerCpuPages61, pindex: int, cpu: int
) -> TaskGen:
    """v6.1 ``free_pcppages_bulk`` (§2.2), caller holds ``pcp->lock``: take ``zone->lock``,
    then empty lists round robin from ``pindex``, each page freed with its cached type
    (re-read when the zone has isolated pageblocks): no page is ever in flight."""
    count = min(pcp.count, count)
    contended = s.zone_lock.owner is not None
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    if contended:
        pcp_use(s, t, pcp, "free_pcppages_bulk empties")
    isolated = s.zone.nr_isolate_pageblock > 0
    min_p, max_p = 0, NR_PCP_LISTS - 1
    pindex -= 1
    freed: list[int] = []
    while count > 0:
        while True:
            if min_p > max_p:
                raise Hang(
                    f"free_pcppages_bulk on CPU{cpu} finds every list empty: {count} more "
                    f"pages to free, pcp count {pcp.count}"
                )
            pindex += 1
            if pindex > max_p:
                pindex = min_p
            if pcp.lists[pindex]:
                break
            if pindex == max_p:
                max_p -= 1
            if pindex == min_p:
                min_p += 1
        order = pcp.order_of(pindex)
        lst = pcp.lists[pindex]
        while True:
            pfn = lst.pop()
            page_moved(s, PCP, pfn, order, -1)
            mt = s.cached_mt[pfn]
            count -= 1 << order
            pcp.count -= 1 << order
            if mt == MT.ISOLATE:
                s.bug("NO-ISO-ON-PCP-TYPE", f"free_pcppages_bulk: pfn {pfn} cached ISOLATE")
            if isolated:
                mt = get_pfnblock_migratetype(s, pfn)
            __free_one_page(s, pfn, order, mt)
            freed.append(pfn)
            if count <= 0 or not lst:
                break
    spin_unlock(s, t, s.zone_lock)
    if s.tracing and freed:
        s.klog(t.cpu, f"free_pcppages_bulk(pcp{cpu}): pfns {freed} to the buddy")
    return None


def free_unref_page_commit(
    s: System, t: Task, pcp: PerCpuPages61, pfn: int, mt: int, order: int
) -> TaskGen:
    """``free_unref_page_commit`` (§2.1), under ``pcp->lock``: push and count (one step), then
    the ``high``/``batch`` reads and any flush (the next)."""
    pindex = pcp.pindex(mt, order)
    landed(s, pfn, must=True)
    pcp.lists[pindex].insert(0, pfn)
    pcp.count += 1 << order
    page_moved(s, PCP, pfn, order, 1)
    yield IRQ_OFF
    pcp_use(s, t, pcp, "free_unref_page_commit reads high and batch of")
    free_high = bool(pcp.free_factor) and 0 < order <= PAGE_ALLOC_COSTLY_ORDER
    high = nr_pcp_high(pcp, free_high)
    if s.tracing:
        s.klog(
            t.cpu,
            f"free_unref_page_commit(pfn {pfn}, order {order}): pcp{t.cpu}.lists[{pindex}], "
            f"count {pcp.count}, high {high}",
        )
    if pcp.count >= high:
        n = nr_pcp_free(pcp, high, pcp.batch, free_high)
        yield from free_pcppages_bulk(s, t, n, pcp, pindex, t.cpu)
    return None


def free_unref_page(s: System, t: Task, pfn: int, order: int) -> TaskGen:
    """v6.1 ``free_unref_page`` (§2.1): prepare with IRQs on; ISOLATE goes straight to the
    buddy, CMA and HIGHATOMIC ride on MOVABLE; then the trylock: commit, or ``free_one_page``
    when another CPU holds this CPU's ``pcp->lock``."""
    free_unref_page_prepare(s, t, pfn, order)
    mt = s.cached_mt[pfn]
    yield None
    if mt >= MIGRATE_PCPTYPES:
        if mt == MT.ISOLATE:
            s.note("page freed straight to an ISOLATE list")
            yield from free_one_page(s, t, pfn, order, mt)
            return None
        mt = MT.MOVABLE
    pcp = s.pcp[t.cpu]
    if spin_trylock(t, pcp.lock):
        yield from free_unref_page_commit(s, t, pcp, pfn, mt, order)
        spin_unlock(s, t, pcp.lock)
    else:
        s.note("free: pcp trylock failed, freed to the buddy")
        yield from free_one_page(s, t, pfn, order, mt)
    return None


def pcp_spin_lock(
    s: System,
    t: Task,
    pcp: PerCpuPages61 | PerCpuPages612,
    who: str = "pcp_spin_lock",
    irqs_on: bool = False,
) -> TaskGen:
    """``spin_lock(&pcp->lock)`` of a pageset pointer read in this step (6.1
    ``pcp_spin_lock_irqsave``, a drainer's lock; ``irqs_on``: 6.12's plain ``spin_lock``):
    spinning is a step boundary, after which the lock (in the pageset) is taken and the
    pageset used."""
    contended = pcp.lock.owner is not None
    yield from spin_lock(s, t, pcp.lock, irqs_off=True, preempt_only=irqs_on)
    if contended:
        pcp_use(s, t, pcp, f"{who} takes the lock of")
    return None


def free_unref_page_list(s: System, t: Task, pfns: tuple[int, ...]) -> TaskGen:
    """v6.1 ``free_unref_page_list`` (§2.1), order 0: prepare each page (one step each; ISOLATE
    pages to the buddy), then commit the rest under the blocking ``pcp_spin_lock_irqsave``,
    released and taken again every ``SWAP_CLUSTER_MAX`` commits."""
    rest = []
    for pfn in pfns:
        free_unref_page_prepare(s, t, pfn, 0)
        if s.cached_mt[pfn] == MT.ISOLATE:
            yield from free_one_page(s, t, pfn, 0, MT.ISOLATE)
        else:
            rest.append(pfn)
        yield None
    if not rest:
        return None
    pcp = s.pcp[t.cpu]
    yield from pcp_spin_lock(s, t, pcp)
    for i, pfn in enumerate(rest):
        if i:
            yield IRQ_OFF
            pcp_use(s, t, pcp, "free_unref_page_list commits to")
        mt = s.cached_mt[pfn]
        mt = mt if mt < MIGRATE_PCPTYPES else MT.MOVABLE
        yield from free_unref_page_commit(s, t, pcp, pfn, mt, 0)
        if (i + 1) % SWAP_CLUSTER_MAX == 0:
            spin_unlock(s, t, pcp.lock)
            pcp = s.pcp[t.cpu]
            yield from pcp_spin_lock(s, t, pcp)
    spin_unlock(s, t, pcp.lock)
    return None


def rmqueue_bulk(
    s: System, t: Task, order: int, count: int, lst: list[int], mt: int
) -> Generator[Yielded, None, int]:
    """v6.1 ``rmqueue_bulk`` (§3.3) under the nested ``zone->lock``: up to ``count`` blocks to
    the list tail; NR_FREE_PAGES drops by the blocks taken, NR_FREE_CMA_PAGES by CMA ones."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    taken = 0
    for _ in range(count):
        pfn = __rmqueue(s, order, mt)
        if pfn is None:
            break
        lst.append(pfn)
        page_moved(s, PCP, pfn, order, 1)
        taken += 1
        if s.cached_mt[pfn] == MT.CMA:
            s.zone.nr_free_cma_pages -= 1 << order
    s.zone.nr_free_pages -= taken << order
    s.dirty |= PCP | FREECOUNT
    spin_unlock(s, t, s.zone_lock)
    return taken


def rmqueue_pcplist(s: System, t: Task, order: int, mt: int) -> TaskGen:
    """``rmqueue_pcplist`` + ``__rmqueue_pcplist`` (§3.2): trylock (None on failure); halve
    ``free_factor``; refill an empty list with ``max(batch >> order, 2)`` blocks; add them to
    ``count``; pop the head. Each is its own step inside one ``pcp->lock`` hold."""
    pcp = s.pcp[t.cpu]
    if not spin_trylock(t, pcp.lock):
        s.note("allocation: pcp trylock failed")
        return None
    pcp.free_factor >>= 1
    lst = pcp.lists[pcp.pindex(mt, order)]
    batch = pcp.batch
    yield IRQ_OFF
    if not lst:
        if batch > 1:
            batch = max(batch >> order, 2)
        if not (yield from refill_pcplist(s, t, pcp, lst, order, batch, mt, rmqueue_bulk)):
            return None
    pcp_use(s, t, pcp, "__rmqueue_pcplist pops from")
    return pop_pcplist(s, t, pcp, lst, order)


def refill_pcplist(
    s: System,
    t: Task,
    pcp: PerCpuPages61 | PerCpuPages612,
    lst: list[int],
    order: int,
    batch: int,
    mt: int,
    rmqueue_bulk: Callable[[System, Task, int, int, list[int], int], Generator[Yielded, None, int]],
    section: str = IRQ_OFF,
) -> TaskGen:
    """6.1/6.12 ``__rmqueue_pcplist``'s refill of an empty list (§3.2) with a kernel's
    ``rmqueue_bulk``: ``batch`` blocks under the nested ``zone->lock``, then ``count`` (the next
    step); the pop is the step after. False, the ``pcp->lock`` released, when none came. The
    steps between yield ``section``: the kernel's pcp-section marker (6.12: ``PREEMPT_OFF``)."""
    pcp_use(s, t, pcp, "rmqueue_bulk refills")
    n = yield from rmqueue_bulk(s, t, order, batch, lst, mt)
    if s.tracing:
        s.klog(t.cpu, f"rmqueue_bulk(order {order}, {batch}): {n} to pcp{t.cpu}")
    yield section
    pcp_use(s, t, pcp, "rmqueue_pcplist adds the refill to the count of")
    pcp.count += n << order
    s.dirty |= PCP
    if not lst:
        spin_unlock(s, t, pcp.lock)
        return False
    yield section
    return True


def pop_pcplist(
    s: System, t: Task, pcp: PerCpuPages61 | PerCpuPages612, lst: list[int], order: int
) -> int:
    """6.1/6.12 ``__rmqueue_pcplist``'s pop (§3.2): the list head, ``count`` down, then
    ``pcp_spin_unlock``; returns the pfn."""
    pfn = lst.pop(0)
    pcp.count -= 1 << order
    page_moved(s, PCP, pfn, order, -1)
    spin_unlock(s, t, pcp.lock)
    return pfn


def rmqueue_buddy(s: System, t: Task, order: int, mt: int) -> TaskGen:
    """``rmqueue_buddy`` (§3.1): one block from the buddy under ``zone->lock``."""
    yield from spin_lock(s, t, s.zone_lock, irqs_off=True)
    pfn = __rmqueue(s, order, mt)
    if pfn is not None:
        __mod_zone_freepage_state(s, -(1 << order), s.cached_mt[pfn])
    spin_unlock(s, t, s.zone_lock)
    return pfn


def alloc_pages(s: System, t: Task, order: int, mt: int, holder: int | None = None) -> TaskGen:
    """``rmqueue`` (§3.1) for ``__alloc_pages``: the pcplists for pcp orders (ALLOC_CMA is set
    for MOVABLE), and the buddy when they give nothing (a failed trylock included). Returns
    the pfn, recorded as allocated, or None."""
    pfn = None
    if pcp_allowed_order(s, order):
        if order:
            s.note(f"{'THP' if order == s.geo.pageblock_order else 'higher'}-order pcp allocation")
        pfn = yield from rmqueue_pcplist(s, t, order, mt)
        if pfn is None:
            yield None
    if pfn is None:
        pfn = yield from rmqueue_buddy(s, t, order, mt)
    return allocated(s, t, pfn, order, mt, holder)


def __free_pages(s: System, t: Task, pfn: int, order: int) -> TaskGen:
    """``free_the_page`` of a block already taken from its owner: pcp orders through
    ``free_unref_page``, others through ``__free_pages_ok``."""
    if pcp_allowed_order(s, order):
        if order:
            s.note(f"{'THP' if order == s.geo.pageblock_order else 'higher'}-order pcp free")
        yield from free_unref_page(s, t, pfn, order)
    else:
        yield from __free_pages_ok(s, t, pfn, order)
    return None
