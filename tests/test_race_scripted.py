"""The races of the series, scripted step by step: spec §15.1's stale free (and its variants
4' and 1'), and the allocation-side reason for the forced drain (spec §7.3 (2))."""

import pytest
from helpers import finish_task, holds, lines, make, names, step_until

from pcpfuzz.actions import RunWork, Signal, Start, Step
from pcpfuzz.constants import EINTR, MT
from pcpfuzz.invariants import check, check_iso_no_alloc
from pcpfuzz.liveness import finish
from pcpfuzz.system import System


def free_in_flight(s: System, n: int = 1) -> tuple[int, ...]:
    """CPU0 (task T) allocates ``n`` order-0 MOVABLE pages and starts freeing them: prepare
    caches MOVABLE, the commit is still to come. Returns the pages."""
    for _ in range(n):
        s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
        if s.cpus[0].task is not None:
            s.apply(Step(0))
    pages = tuple(s.pool())
    op = "free_pages" if n == 1 else "free_unref_page_list"
    s.apply(Start(0, op, pages))
    assert all(s.cached_mt[p] == MT.MOVABLE and p in s.inflight for p in pages)
    return pages


def isolate_behind_the_free(s: System, block: int) -> None:
    """CPU1 (task O) starts offlining ``block`` and runs until the range is isolated and its
    required drain (or pcp disable) is done; T stays between prepare and commit."""
    s.apply(Start(1, "offline_pages", (block,)))
    step_until(s, 1, lambda x: bool(x.iso_users), checked=True)
    assert all(s.pageblock_mt[pb] == MT.ISOLATE for pb in range(4 * block, 4 * block + 4))


def commit(s: System) -> None:
    """T's commit(s), with IRQs off, until T returns."""
    while s.cpus[0].task is not None:
        s.apply(Step(0))


def race(profile: str, n: int = 1) -> tuple[System, tuple[int, ...]]:
    s = make(profile)
    pages = free_in_flight(s, n)
    isolate_behind_the_free(s, pages[0] // s.geo.block_pages)
    commit(s)
    return s, pages


def test_v5_9_the_stale_free_strands_a_page_on_a_pcplist() -> None:
    s, (p,) = race("v5.9-nofix")
    assert f"free_unref_page_commit(pfn {p}): pcp0.lists[MOVABLE] += {p}, count 1 < high 8" in (
        lines(s)
    )
    found = check(s)
    assert names(found) == ["ISO-PCP"]
    assert f"pfn {p} of isolated pageblock {p // 4} is on CPU0's MOVABLE pcplist" in str(found[0])
    at_rest = finish(s)
    assert names(at_rest) == ["OFFLINE-TERM"]
    assert f"pfn {p} on CPU0's MOVABLE pcplist" in str(at_rest[0])


def test_v5_10_the_retry_drain_rereads_isolate_and_offline_terminates() -> None:
    s, (p,) = race("v5.10")
    holds(s)
    since = len(s.log)
    assert finish_task(s, 1, checked=True) == 0
    trace = lines(s, since)
    failed = trace.index(f"test_pages_isolated: pfn {p} is on CPU0's MOVABLE pcplist: EBUSY")
    posted = trace.index("drain_all_pages: drain work posted to CPUs [0]", failed)
    flushed = trace.index(f"free_pcppages_bulk(pcp0): pfns [{p}] to the buddy", posted)
    assert trace.index(f"__offline_isolated_pages(pfn {p & ~15}-{p | 15}): offline") > flushed
    assert s.events["bulk free re-read ISOLATE"] == 1
    assert s.events["offline succeeded"] == 1
    assert finish(s) == [] and check(s) == []


def test_v5_11_the_stale_free_reaches_the_isolate_list_at_once() -> None:
    s = make("v5.11")
    (p,) = free_in_flight(s)
    holds(s)
    isolate_behind_the_free(s, p // s.geo.block_pages)
    s.apply(Step(0))  # push: count 1 >= high 0, still IRQs off
    holds(s)
    s.apply(Step(0))  # the flush re-reads ISOLATE under zone->lock
    holds(s)
    assert s.buddy_mt[p] == MT.ISOLATE and s.pcp[0].count == 0
    assert s.events["free committed with a stale migratetype"] == 1
    assert finish_task(s, 1, checked=True) == 0
    assert finish(s) == [] and check(s) == []


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.10"])
def test_variant_4_the_stray_page_is_allocated(profile: str) -> None:
    s, (p,) = race(profile)
    s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
    assert s.pool() == [p]  # the head of CPU0's MOVABLE list: inside the isolated range
    found = check_iso_no_alloc(s)
    assert names(found) == ["ISO-NO-ALLOC"] and f"returned pfn {p}" in str(found[0])
    # Now an in-use movable page: the offline migrates it, and its free reads ISOLATE.
    assert finish_task(s, 1) == 0
    assert s.events["page migrated"] == 1
    assert finish(s) == [] and check(s) == []


def test_variant_4_v5_11_cannot_allocate_an_isolated_page() -> None:
    s, (p,) = race("v5.11")
    s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
    if s.cpus[0].task is not None:
        s.apply(Step(0))
    assert p not in s.pool()
    holds(s)
    assert finish_task(s, 1, checked=True) == 0
    assert finish(s) == []


def test_variant_1_free_unref_page_list_v5_9() -> None:
    s, pages = race("v5.9-nofix", n=2)
    assert [v.message for v in check(s)] == [
        f"pfn {p} of isolated pageblock {p // 4} is on CPU0's MOVABLE pcplist"
        for p in reversed(pages)
    ]
    assert names(finish(s)) == ["OFFLINE-TERM"]


@pytest.mark.parametrize("profile", ["v5.10", "v5.11"])
def test_variant_1_free_unref_page_list_is_fixed(profile: str) -> None:
    s = make(profile)
    pages = free_in_flight(s, 2)
    isolate_behind_the_free(s, pages[0] // s.geo.block_pages)
    while s.cpus[0].task is not None:
        s.apply(Step(0))
        holds(s)
    assert finish_task(s, 1, checked=True) == 0
    assert finish(s) == [] and check(s) == []


def allocation_side_race(profile: str) -> System:
    """Spec §7.3 (2): CPU0 reads the old batch (2) with an empty list; CPU1's offline disables
    pcplists; then CPU0 refills with the old batch from the block being offlined."""
    s = make(profile)
    # The offline begins first: mem_hotplug_begin waits for an IRQ-off CPU (issue 11).
    s.apply(Start(1, "offline_pages", (3,)))  # the refill will come from block 3 (pfn 56, 57)
    s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
    assert s.cpus[0].task.irq_off and s.pcp[0].count == 0

    def disabled_or_waiting(x: System) -> bool:
        return x.pcp_disabled or (x.cpus[1].task.wait is not None and not x.runnable_work())

    step_until(s, 1, disabled_or_waiting, checked=True)
    assert [(p.high, p.batch) for p in s.pcp] == [(0, 1), (0, 1)]
    assert all(mt != MT.ISOLATE for mt in s.pageblock_mt[12:16])
    s.apply(Step(0))
    assert "rmqueue_bulk(batch 2): pcp0.lists[MOVABLE] = [56, 57]" in lines(s)
    assert s.pool() == [56] and s.pcp[0].lists[MT.MOVABLE] == [57]
    return s


def test_unforced_disable_leaves_a_page_on_a_disabled_pcplist() -> None:
    s = allocation_side_race("v5.11-unforced-disable")
    assert s.events["drain_all_pages skipped a CPU"] == 2
    found = check(s)
    assert names(found) == ["PCP-OFF"]
    assert "CPU0's pcplist holds 1 page(s) [57]" in str(found[0])
    at_rest = finish(s)
    assert names(at_rest) == ["OFFLINE-TERM"]
    assert "pfn 57 on CPU0's MOVABLE pcplist" in str(at_rest[0])


def test_forced_disable_drains_the_refilled_page() -> None:
    s = allocation_side_race("v5.11")
    assert not s.pcp_disabled and s.cpus[0].work_pending  # the forced drain waits for CPU0
    holds(s)
    s.apply(RunWork(0))
    holds(s)
    assert s.pcp[0].count == 0
    assert finish_task(s, 1, checked=True) == 0
    assert finish(s) == [] and check(s) == []


def unmovable_stray(profile: str) -> tuple[System, int]:
    """Variant 4'': the stale type is UNMOVABLE. CPU0's UNMOVABLE allocation steals block 3's
    first pageblocks (now UNMOVABLE); its page p is freed, isolation of block 3 succeeds (p is
    free, in flight), the commit puts p on the UNMOVABLE list, and CPU0 allocates again."""
    s = make(profile)
    s.apply(Start(0, "alloc_pages", (0, MT.UNMOVABLE)))
    s.apply(Step(0))
    (p,) = s.pool()
    assert s.pageblock_mt[p // 4] == MT.UNMOVABLE
    s.apply(Start(0, "free_pages", (p,)))
    assert s.cached_mt[p] == MT.UNMOVABLE
    isolate_behind_the_free(s, p // s.geo.block_pages)
    commit(s)
    s.apply(Start(0, "alloc_pages", (0, MT.UNMOVABLE)))
    if s.cpus[0].task is not None:
        s.apply(Step(0))
    return s, p


def test_variant_4_unmovable_stray_blocks_v5_10_offline_until_a_signal() -> None:
    # (b)'s retry drain cannot help: the stray page is now in use and unmovable, so offline
    # loops until signalled. OFFLINE-TERM's premise (all pages free or movable) no longer holds.
    s, p = unmovable_stray("v5.10")
    assert s.pool() == [p] and not s.allocated[p].movable
    assert names(check_iso_no_alloc(s)) == ["ISO-NO-ALLOC"]
    t = s.cpus[1].task
    step_until(s, 1, lambda x: t.loop_iterations >= 200)
    assert s.cpus[1].task is t
    s.apply(Signal(1))
    assert finish_task(s, 1) == EINTR


def test_variant_4_unmovable_stray_cannot_happen_on_v5_11() -> None:
    s, p = unmovable_stray("v5.11")
    assert p not in s.pool()
    holds(s)
    assert finish_task(s, 1, checked=True) == 0
