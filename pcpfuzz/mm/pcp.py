"""The per-CPU page lists of mm/page_alloc.c: order-0 free and allocation (spec §4, §5, §6)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT, mt_name
from pcpfuzz.dirty import CACHED, FREECOUNT, PCP, landed, page_moved
from pcpfuzz.mm.buddy import (
    __free_one_page,
    __mod_zone_freepage_state,
    __rmqueue,
    free_one_page,
    get_pfnblock_migratetype,
)
from pcpfuzz.state import IRQ_OFF, PerCpuPages, Task, TaskGen
from pcpfuzz.violation import Hang

if TYPE_CHECKING:
    from pcpfuzz.system import System


class Pageset(Protocol):
    """Any kernel's ``struct per_cpu_pages`` (5.x, v6.1, v6.12): its ghost ``freed`` flag."""

    freed: bool


def pcp_use(s: System, t: Task, pcp: Pageset, what: str) -> None:
    """A task uses ``pcp`` (or its ``pcp->lock``, which lives in it), a pageset pointer it
    read in an earlier step: KASAN's use-after-free report (PCP-UAF) when ``zone_pcp_reset``
    has freed it since."""
    if pcp.freed:
        s.bug(
            "PCP-UAF",
            f"CPU{t.cpu} {t.op}: {what} a pageset zone_pcp_reset freed (use-after-free)",
        )


def free_unref_page_prepare(s: System, t: Task, pfn: int) -> None:
    """``free_unref_page_prepare``: cache the pageblock's migratetype, locklessly (spec §4.1).
    This read opens the race window."""
    mt = get_pfnblock_migratetype(s, pfn)
    s.cached_mt[pfn] = mt
    s.dirty |= CACHED
    if s.tracing:
        s.klog(t.cpu, f"free_unref_page_prepare(pfn {pfn}): cached mt {mt_name(mt)}")


def free_unref_page_commit(s: System, t: Task, pfn: int) -> TaskGen:
    """``free_unref_page_commit`` with IRQs off (spec §4.2). The push and the read of ``high`` are
    one step; the read of ``batch`` and the flush another (the 88e8ac11d2ea window)."""
    mt = s.cached_mt[pfn]
    landed(s, pfn, must=True)
    pbmt = get_pfnblock_migratetype(s, pfn)
    if mt >= MIGRATE_PCPTYPES:
        if mt == MT.ISOLATE:
            free_one_page(s, pfn, 0, MT.ISOLATE)
            s.note("page freed straight to an ISOLATE list")
            if s.tracing:
                s.klog(t.cpu, f"free_unref_page_commit(pfn {pfn}): ISOLATE -> free_one_page")
            return None
        mt = MT.MOVABLE
    if pbmt == MT.ISOLATE:
        s.note("free committed with a stale migratetype")
    pcp = s.pcp[t.cpu]
    pcp.lists[mt].insert(0, pfn)
    pcp.count += 1
    page_moved(s, PCP, pfn, 0, 1)
    high = pcp.high
    if s.tracing:
        s.klog(
            t.cpu,
            f"free_unref_page_commit(pfn {pfn}): pcp{t.cpu}.lists[{mt_name(mt)}] += {pfn}, "
            f"count {pcp.count} {'>=' if pcp.count >= high else '<'} high {high}",
        )
    if pcp.count >= high:
        yield IRQ_OFF
        pcp_use(s, t, pcp, "free_pcppages_bulk flushes")
        free_pcppages_bulk(s, t.cpu, pcp.batch, pcp)
    return None


def free_unref_page(s: System, t: Task, pfn: int) -> TaskGen:
    """``free_unref_page`` (spec §4.1): prepare with IRQs on, a preemption point, then commit."""
    free_unref_page_prepare(s, t, pfn)
    yield None
    yield from free_unref_page_commit(s, t, pfn)
    return None


def free_unref_page_list(s: System, t: Task, pfns: tuple[int, ...]) -> TaskGen:
    """``free_unref_page_list`` (spec §4.3): prepare every page, then commit them in order with
    IRQs off; other CPUs may run between commits, this CPU's drain work may not."""
    for pfn in pfns:
        free_unref_page_prepare(s, t, pfn)
    yield None
    for i, pfn in enumerate(pfns):
        if i:
            yield IRQ_OFF
        yield from free_unref_page_commit(s, t, pfn)
    return None


def free_pcppages_bulk(s: System, cpu: int, count: int, pcp: PerCpuPages) -> None:
    """``free_pcppages_bulk`` (spec §5): round robin from the list tails, then, under zone->lock,
    free each page with its cached type, re-read when the zone has isolated pageblocks."""
    if s.profile.bulk_clamp:
        count = min(pcp.count, count)
    mtidx = 0
    batch_free = 0
    local: list[int] = []
    while count > 0:
        searched = 0
        while True:
            batch_free += 1
            mtidx = (mtidx + 1) % MIGRATE_PCPTYPES
            if pcp.lists[mtidx]:
                break
            searched += 1
            if searched > MIGRATE_PCPTYPES:
                raise Hang(
                    f"free_pcppages_bulk on CPU{cpu} searches its empty pcplists forever: "
                    f"{count} more pages to free, pcp count {pcp.count}"
                )
        if batch_free == MIGRATE_PCPTYPES:
            batch_free = count
        lst = pcp.lists[mtidx]
        while True:
            local.append(lst.pop())
            page_moved(s, PCP, local[-1], 0, -1)
            pcp.count -= 1
            count -= 1
            if not count:
                break
            batch_free -= 1
            if not batch_free or not lst:
                break
    isolated = s.zone.nr_isolate_pageblock > 0
    for pfn in local:
        mt = s.cached_mt[pfn]
        if isolated:
            mt = get_pfnblock_migratetype(s, pfn)
            if mt == MT.ISOLATE:
                s.note("bulk free re-read ISOLATE")
        __free_one_page(s, pfn, 0, mt)
    if s.tracing and local:
        s.klog(cpu, f"free_pcppages_bulk(pcp{cpu}): pfns {local} to the buddy")


def rmqueue_bulk(s: System, count: int, lst: list[int], mt: int) -> int:
    """``rmqueue_bulk`` (spec §6.3): take ``count`` order-0 pages to the tail of ``lst``."""
    taken = 0
    for _ in range(count):
        pfn = __rmqueue(s, 0, mt)
        if pfn is None:
            break
        lst.append(pfn)
        page_moved(s, PCP, pfn, 0, 1)
        taken += 1
        if s.cached_mt[pfn] == MT.CMA:
            s.zone.nr_free_cma_pages -= 1
    s.zone.nr_free_pages -= taken
    s.dirty |= PCP | FREECOUNT
    return taken


def rmqueue_pcplist(s: System, t: Task, mt: int) -> TaskGen:
    """``rmqueue_pcplist`` (spec §6.2): an empty list reads ``batch`` in one step and refills in
    the next (§14.2 item 4); other CPUs may run in between, this CPU's drain work may not."""
    pcp = s.pcp[t.cpu]
    lst = pcp.lists[mt]
    if not lst:
        batch = pcp.batch
        yield IRQ_OFF
        pcp_use(s, t, pcp, "rmqueue_bulk refills")
        pcp.count += rmqueue_bulk(s, batch, lst, mt)
        if s.tracing:
            s.klog(t.cpu, f"rmqueue_bulk(batch {batch}): pcp{t.cpu}.lists[{mt_name(mt)}] = {lst}")
        if not lst:
            return None
    pcp.count -= 1
    pfn = lst.pop(0)
    page_moved(s, PCP, pfn, 0, -1)
    return pfn


def rmqueue(s: System, order: int, mt: int) -> int | None:
    """``rmqueue``'s buddy path for order > 0 (spec §6.1, §6.4), under zone->lock."""
    pfn = __rmqueue(s, order, mt)
    if pfn is not None:
        __mod_zone_freepage_state(s, -(1 << order), s.cached_mt[pfn])
    return pfn


def alloc_pages(s: System, t: Task, order: int, mt: int, holder: int | None = None) -> TaskGen:
    """``__alloc_pages`` fast path: order 0 through the pcplists, else the buddy. Returns the
    pfn, recorded as allocated (movable when ``mt`` is MOVABLE), or None."""
    if order == 0:
        pfn = yield from rmqueue_pcplist(s, t, mt)
    else:
        pfn = rmqueue(s, order, mt)
    return allocated(s, t, pfn, order, mt, holder)


def allocated(
    s: System, t: Task, pfn: int | None, order: int, mt: int, holder: int | None
) -> int | None:
    """The end of ``__alloc_pages``: record ``pfn`` as allocated (movable when ``mt`` is
    MOVABLE) and return it, or note the failure and return None."""
    if pfn is None:
        s.note("allocation failed")
        return None
    s.allocate(pfn, order, mt == MT.MOVABLE, holder, t)
    if s.tracing:
        s.klog(t.cpu, f"alloc_pages(order {order}, {mt_name(mt)}) = pfn {pfn}")
    return pfn


def __free_pages(s: System, t: Task, pfn: int, order: int) -> TaskGen:
    """``__free_pages`` of a block already taken from its owner: order 0 through
    ``free_unref_page``, else ``__free_pages_ok`` (a lockless type read, then ``free_one_page``)."""
    if order == 0:
        yield from free_unref_page(s, t, pfn)
        return None
    mt = get_pfnblock_migratetype(s, pfn)
    yield None
    landed(s, pfn, must=True)
    free_one_page(s, pfn, order, mt)
    if s.tracing:
        s.klog(t.cpu, f"__free_pages_ok(pfn {pfn}, order {order}): to the buddy")
    return None
