"""The v6.1 profile (modern-kernels.md (d)): boot sizing, multi-order pcplists, the owner
trylock fallback, incremental checks equal to full checks (test_corpus_entries replays its
corpus)."""

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from pcpfuzz.actions import CpuDown, CpuUp, Run, Signal, Start, Step
from pcpfuzz.constants import EBUSY, EINVAL, ENOENT, MT
from pcpfuzz.corpus import load_entry
from pcpfuzz.engines.base import budget_for
from pcpfuzz.engines.registry import load_engines
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check, check_pcp_off
from pcpfuzz.ladder import KNOWN_FINDINGS, geometry_for
from pcpfuzz.mm.buddy import del_page_from_free_list
from pcpfuzz.mm6.buddy import __free_one_page, migratetype_is_mergeable
from pcpfuzz.mm6.page_alloc import nr_pcp_free, nr_pcp_high
from pcpfuzz.mm6.page_isolation import split_free_page
from pcpfuzz.mm6.pageset import zone_watermarks
from pcpfuzz.profiles import CAMPAIGN, get_profile
from pcpfuzz.state import PerCpuPages61, SpinLock, Task
from pcpfuzz.system import System
from pcpfuzz.trace import execute

V61 = get_profile("v6.1")
GEO = geometry_for("v6.1")


def test_boot_sizes_high_from_the_low_watermark() -> None:
    s = System(V61, GEO)
    assert zone_watermarks(64, 40, 64) == (40, 50, 60) == s.zone.watermark
    assert [(p.high, p.batch) for p in s.pcp] == [(25, 3), (25, 3)]  # max(50 / 2, 3 << 2)
    assert V61 in CAMPAIGN


def _run(s: System, cpu: int) -> None:
    while s.cpus[cpu].task is not None:
        s.apply(Step(cpu))


def test_thp_order_allocation_and_free_use_the_thp_list() -> None:
    s = System(V61, GEO)
    s.apply(Start(0, "alloc_pages", (4, 1)))
    _run(s, 0)
    (pfn,) = s.pool()
    assert s.allocated[pfn].order == 4
    s.apply(Start(0, "free_pages", (pfn,)))
    _run(s, 0)
    assert s.pcp[0].lists[12] == [pfn] and s.pcp[0].count == 16
    assert check(s, full=True) == []


def test_a_free_whose_trylock_fails_goes_to_the_buddy() -> None:
    s = System(V61, Geometry(fraction=0, sizing_scale=256, pages_min=40))
    s.apply(Start(0, "alloc_pages", (0, 1)))
    _run(s, 0)
    (pfn,) = s.pool()
    free_before = s.zone.nr_free_pages
    s.pcp[0].lock.owner = 99  # a remote drainer holds CPU0's pcp->lock
    s.apply(Start(0, "free_pages", (pfn,)))
    _run(s, 0)
    assert pfn not in s.pcp[0].lists[1] and s.zone.nr_free_pages == free_before + 1
    assert s.events["free: pcp trylock failed, freed to the buddy"] == 1


@pytest.mark.parametrize(("profile", "seeds"), [("v6.1", 12), ("v6.12", 10)])
def test_incremental_checks_equal_full_checks_on_random_walks(profile: str, seeds: int) -> None:
    for seed in range(seeds):
        rng = random.Random(seed)
        s = System(get_profile(profile), geometry_for(profile))
        for _ in range(150):
            actions = s.enabled()
            if not actions:
                break
            s.apply(rng.choice(actions))
            full = check(s, full=True)
            assert check(s) == full
            if full:
                break


def _free_blocks(s: System) -> list[tuple[int, int, int]]:
    return sorted(
        (h, o, int(mt))
        for o, lists in enumerate(s.zone.free_list)
        for mt, fl in enumerate(lists)
        for h in fl
    )


def _to_end(s: System, cpu: int) -> None:
    while s.cpus[cpu].task is not None:
        s.apply(Step(cpu))
        assert check(s, full=True) == []


def test_pageblock_aligned_contig_splits_the_block_straddling_its_boundary() -> None:
    s = System(V61, GEO)
    assert s.mm.contig_alignment(GEO) == 16 and _free_blocks(s) == [(0, 5, 1), (32, 5, 1)]
    s.apply(Start(0, "alloc_contig_range", (16,)))
    _to_end(s, 0)
    assert s.returned[0] == ("alloc_contig_range", 0)
    assert s.events["split_free_page split a block across an isolation boundary"] == 1
    assert _free_blocks(s) == [(0, 4, 1), (32, 5, 1)]
    assert sorted(s.allocated) == list(range(16, 32))


def test_split_free_page_refrees_each_piece_with_its_pageblocks_type() -> None:
    s = System(V61, GEO)
    s.pageblock_mt[1] = MT.ISOLATE
    s.zone.nr_isolate_pageblock = 1
    t = Task(99, 0, "test", (), None)  # type: ignore[arg-type]
    gen = split_free_page(s, t, 0, 5, 16)
    try:
        next(gen)
    except StopIteration as stop:
        assert stop.value == 0
    assert _free_blocks(s) == [(0, 4, int(MT.MOVABLE)), (16, 4, int(MT.ISOLATE)), (32, 5, 1)]
    assert s.zone.nr_free_pages == 48  # the isolated half left NR_FREE_PAGES
    gen = split_free_page(s, t, 0, 5, 16)  # the block changed: -ENOENT, the caller rescans
    try:
        next(gen)
    except StopIteration as stop:
        assert stop.value == ENOENT


def test_a_straddling_lru_block_is_migrated_then_split() -> None:
    s = System(V61, GEO)
    s.apply(Start(1, "alloc_pages", (5, int(MT.MOVABLE))))
    _to_end(s, 1)
    (big,) = s.pool()
    s.apply(Start(0, "alloc_contig_range", (big + 16,)))
    _to_end(s, 0)
    assert s.events["page migrated"] == 1 and s.returned[0] == ("alloc_contig_range", 0)
    assert s.alloc_head[big] != big and all(s.alloc_head[p] >= 0 for p in range(big + 16, big + 32))


FL_TYPE_RACE = (
    Start(1, "alloc_pages", (5, 1)),
    Start(0, "alloc_contig_range", (16,)),
    Step(0),
    Step(0),
    Start(1, "alloc_pages", (0, 1)),
    Run(1),
)
"""CPU0's contig isolates pageblock 1 (``set_migratetype_isolate``, zone->lock released); before
its ``split_free_page``, CPU1's refill splits the order-5 block straddling the boundary and
``expand`` puts the upper half, all of pageblock 1, on the MOVABLE list."""


def test_an_allocation_between_isolation_and_split_puts_an_isolated_half_on_movable() -> None:
    out = execute(V61, GEO, FL_TYPE_RACE)  # at rest the contig took the half uncounted
    assert (out.invariant, out.at) == ("FREECOUNT", -1)
    assert out.violation is not None
    assert out.violation.message == "NR_FREE_PAGES is 31, freelists hold 15"
    s = System(V61, GEO)
    for action in FL_TYPE_RACE:
        s.apply(action)
    assert (16, 4, int(MT.MOVABLE)) in _free_blocks(s) and s.pageblock_mt[1] == MT.ISOLATE
    found: list[str] = []
    while not found:  # the scan finds nothing across the boundary; the pass ends
        s.apply(Step(0))
        found = [v.invariant for v in check(s, full=True)]
    assert found == ["FL-TYPE"] and s.isolation_passes == 0


def test_drain_locked_breaks_when_the_drain_reads_count_zero_inside_a_refill() -> None:
    s = System(V61, GEO)
    s.apply(Start(1, "alloc_pages", (0, 1)))  # CPU1: trylock taken, list empty, count 0
    s.apply(Start(0, "drain_local_pages", ()))  # CPU0 drains itself: no owner section there
    assert check(s) == [] and s.cpus[1].task is not None
    out = execute(
        V61,
        GEO,
        (Start(0, "get_hwpoison_page", ()), Start(1, "alloc_pages", (0, 0)), Run(0)),
    )
    assert (out.invariant, out.at) == ("DRAIN-LOCKED", 2)


def test_the_reproduced_disable_race_breaks_pcp_off_three_actions_after_drain_locked() -> None:
    entry = load_entry(Path(__file__).parent.parent / "corpus/v6.1/DRAIN-LOCKED-19b2b359a2.json")
    s = System(V61, entry.geometry)
    more = (Run(0), Step(1), Step(1))
    for action in (*entry.actions, *more):
        s.apply(action)
    assert _reported_names(s) == ["DRAIN-LOCKED"]
    assert [v.invariant for v in check_pcp_off(s)] == ["PCP-OFF"]


def _reported_names(s: System) -> list[str]:
    return [v.invariant for v in s.bugs]


def test_cpu_down_is_a_task_that_waits_for_a_held_pcp_batch_high_lock() -> None:
    s = System(V61, GEO)
    s.pcp_batch_high_lock.owner = 99  # a zone_pcp_disable user holds it
    s.apply(CpuDown(1))
    for _ in range(6):
        if s.cpus[1].task.runnable(s):
            s.apply(Step(1))
    t = s.cpus[1].task
    assert not s.cpus[1].online and t.op == "cpu_down"
    assert t.wait is not None and t.wait.describe() == "mutex_lock(pcp_batch_high_lock)"
    assert CpuDown(0) not in s.enabled()  # one CPU hotplug at a time
    s.pcp_batch_high_lock.owner = None
    _run(s, 1)
    assert [(p.high, p.batch) for p in s.pcp] == [(50, 3), (50, 3)]  # low 50 over one CPU
    s.apply(CpuUp(1))
    _run(s, 1)
    assert s.cpus[1].online and [(p.high, p.batch) for p in s.pcp] == [(25, 3), (25, 3)]
    assert check(s, full=True) == []


def test_cpu_down_drains_the_dead_cpu_under_its_lock() -> None:
    s = System(V61, GEO)
    s.apply(Start(1, "alloc_pages", (0, 1)))
    _run(s, 1)
    assert s.pcp[1].count == 2
    s.apply(CpuDown(1))
    _run(s, 1)
    assert s.pcp[1].count == 0 and check(s, full=True) == []


def test_nr_pcp_free_grows_with_free_factor_up_to_high_minus_batch() -> None:
    pcp = PerCpuPages61(SpinLock("l"), 4, high=25, batch=3)
    assert [nr_pcp_free(pcp, 25, 3, False) for _ in range(5)] == [3, 6, 12, 22, 22]
    assert pcp.free_factor == 3
    pcp.count = 9
    assert nr_pcp_free(pcp, 25, 3, True) == 9  # free_high: everything
    assert nr_pcp_free(pcp, 0, 1, False) == 1  # disabled (high 0 < batch 1)
    assert nr_pcp_high(pcp, False) == 25 and nr_pcp_high(pcp, True) == 0


def test_a_pcp_refill_takes_max_of_batch_shifted_by_order_and_two_blocks() -> None:
    for order, left in ((1, 2), (2, 4), (3, 8), (GEO.pageblock_order, 16)):
        s = System(V61, GEO)
        s.apply(Start(0, "alloc_pages", (order, int(MT.MOVABLE))))
        _run(s, 0)
        assert s.pcp[0].count == left  # two blocks of 2^order refilled, one popped
        assert check(s, full=True) == []


def test_frees_flush_once_count_reaches_high_and_conserve_pages() -> None:
    s = System(V61, GEO)
    for _ in range(30):
        s.apply(Start(0, "alloc_pages", (0, int(MT.MOVABLE))))
        _run(s, 0)
    for pfn in s.pool():
        s.apply(Start(0, "free_pages", (pfn,)))
        _run(s, 0)
        assert s.pcp[0].count < s.pcp[0].high
    assert s.pcp[0].free_factor > 0 and s.zone.nr_free_pages + s.pcp[0].count == 64
    assert check(s, full=True) == []


def test_free_unref_page_list_commits_under_the_pcp_lock() -> None:
    s = System(V61, GEO)
    for _ in range(3):
        s.apply(Start(0, "alloc_pages", (0, int(MT.MOVABLE))))
        _run(s, 0)
    pfns = tuple(s.pool())
    s.apply(Start(0, "free_unref_page_list", pfns))
    while s.pcp[0].lock.owner is None:
        s.apply(Step(0))
    assert s.cpus[0].task is not None and s.cpus[0].task.irq_off
    _run(s, 0)
    assert sorted(s.pcp[0].lists[int(MT.MOVABLE)]) == sorted(pfns) and s.pcp[0].count == 3
    assert check(s, full=True) == []


def test_a_page_of_an_isolated_pageblock_is_freed_straight_to_the_buddy() -> None:
    s = System(V61, GEO)
    s.apply(Start(0, "alloc_pages", (0, int(MT.MOVABLE))))
    _run(s, 0)
    (pfn,) = s.pool()
    s.pageblock_mt[s.pb(pfn)] = MT.ISOLATE
    s.zone.nr_isolate_pageblock = 1
    s.apply(Start(0, "free_pages", (pfn,)))
    _run(s, 0)
    assert s.events["page freed straight to an ISOLATE list"] == 1
    assert s.buddy_mt[pfn] == MT.ISOLATE and pfn not in s.pcp[0].lists[int(MT.MOVABLE)]


def test_v6_1_buddy_merges_mergeable_types_and_not_across_isolate() -> None:
    for other, merged in ((MT.UNMOVABLE, True), (MT.ISOLATE, False), (MT.CMA, False)):
        s = System(V61, GEO)
        del_page_from_free_list(s, 0, 5)  # take the order-5 block at pfn 0 apart
        s.pageblock_mt[1] = other
        __free_one_page(s, 0, 4, int(MT.MOVABLE))
        __free_one_page(s, 16, 4, int(other))
        assert (s.buddy_order[0] == 5) is merged, other
    assert migratetype_is_mergeable(MT.RECLAIMABLE) and not migratetype_is_mergeable(MT.CMA)


def test_a_non_forced_drain_all_skips_cpus_whose_count_it_reads_zero() -> None:
    s = System(V61, GEO)
    s.apply(Start(0, "alloc_pages", (0, int(MT.MOVABLE))))
    _run(s, 0)
    assert (s.pcp[0].count, s.pcp[1].count) == (2, 0)
    s.apply(Start(1, "drain_all_pages", (1,)))
    _run(s, 1)
    assert s.events["drain_all_pages skipped a CPU"] == 1 and s.pcp[0].count == 0
    assert check(s, full=True) == []


def test_the_high_fraction_sysctl_rejects_1_to_7_and_recomputes_high() -> None:
    s = System(V61, GEO)
    for value, ret, high in ((7, EINVAL, 25), (8, 0, 12), (0, 0, 25)):
        s.apply(Start(0, "percpu_pagelist_high_fraction", (value,)))
        _run(s, 0)
        assert s.returned[0] == ("percpu_pagelist_high_fraction", ret)
        assert [p.high for p in s.pcp] == [high, high]  # 8: max(64 / 8 / 2, 3 << 2)
        assert check(s, full=True) == []


def test_offline_disables_pcplists_then_recomputes_watermarks_and_high() -> None:
    s = System(V61, GEO)
    s.apply(Start(0, "offline_pages", (1,)))
    while not s.pcp_disabled:
        s.apply(Step(0))
    assert [(p.high, p.batch) for p in s.pcp] == [(0, 1), (0, 1)]
    _run(s, 0)
    assert s.returned[0] == ("offline_pages", 0) and s.zone.managed_pages == 32
    assert [(p.high, p.batch) for p in s.pcp] == [(25, 1), (25, 1)] and check(s, full=True) == []
    s.apply(Start(0, "online_pages", (1,)))
    _run(s, 0)
    assert s.zone.watermark == (40, 50, 60)
    assert [(p.high, p.batch) for p in s.pcp] == [(25, 3), (25, 3)] and check(s, full=True) == []


def test_an_offline_that_cannot_isolate_leaves_nothing_isolated() -> None:
    s = System(V61, GEO)
    s.apply(Start(1, "alloc_pages", (0, int(MT.UNMOVABLE))))
    _run(s, 1)
    (pfn,) = s.pool()
    s.apply(Start(0, "offline_pages", (pfn // GEO.block_pages,)))
    _run(s, 0)
    assert s.returned[0] == ("offline_pages", EBUSY) and not s.pcp_disabled
    assert MT.ISOLATE not in s.pageblock_mt and s.zone.nr_isolate_pageblock == 0
    assert check(s, full=True) == []


def test_an_allocation_whose_trylock_fails_is_served_by_the_buddy() -> None:
    s = System(V61, GEO)
    s.pcp[0].lock.owner = 99  # a remote drainer holds CPU0's pcp->lock
    s.apply(Start(0, "alloc_pages", (0, int(MT.MOVABLE))))
    _run(s, 0)
    assert s.events["allocation: pcp trylock failed"] == 1
    assert len(s.pool()) == 1 and s.pcp[0].count == 0 and s.zone.nr_free_pages == 63


def test_a_block_above_the_pcp_orders_is_freed_through_free_pages_ok() -> None:
    s = System(V61, GEO)
    s.apply(Start(0, "alloc_pages", (5, int(MT.MOVABLE))))
    _run(s, 0)
    (pfn,) = s.pool()
    assert s.zone.nr_free_pages == 32 and s.pcp[0].count == 0
    s.apply(Start(0, "free_pages", (pfn,)))  # the lockless type read, then a preemption point
    assert s.buddy_order[pfn] < 0 and pfn in s.inflight
    _run(s, 0)  # the locked free_one_page
    assert s.buddy_order[pfn] == 5 and s.zone.nr_free_pages == 64 and s.pcp[0].count == 0


ZONE_RESET_GEOMETRY = Geometry(nr_blocks=2, online_blocks=1, fraction=0, sizing_scale=1024)
"""One block online of two: offlining block 0 empties the zone (``zone_pcp_reset``)."""


def offline_until(s: System, point: Callable[[System], bool]) -> list[Start | Step]:
    """Start offline of block 0 on CPU0 and step it alone until ``point(s)``; the actions."""
    actions: list[Start | Step] = [Start(0, "offline_pages", (0,))]
    s.apply(actions[0])
    while not point(s):
        assert s.cpus[0].task is not None, "the offline ended before the point"
        actions.append(Step(0))
        s.apply(actions[-1])
    return actions


def past_zone_pcp_enable(s: System) -> bool:
    """Block 0 is offline and ``zone_pcp_enable`` has released ``pcp_batch_high_lock``."""
    return not s.block_online[0] and s.pcp_batch_high_lock.owner is None


def zone_reset_uaf(profile: str) -> tuple[System, list[str]]:
    """CPU1's allocation takes its ``pcp->lock`` after ``zone_pcp_enable`` (and stays inside:
    empty list, a refill is due); CPU0 runs the offline to the end (the zone empties:
    ``zone_pcp_reset``); then CPU1 goes on. The system and the violations' messages."""
    s = System(get_profile(profile), ZONE_RESET_GEOMETRY, tracing=True)
    offline_until(s, past_zone_pcp_enable)
    for action in (Start(1, "alloc_pages", (0, MT.MOVABLE)), Run(0)):
        s.apply(action)
    cpu1 = s.cpus[1].task
    assert s.cpus[0].task is None and s.zone.present_pages == 0
    assert cpu1 is not None and cpu1.irq_off and s.pcp[1].lock.owner == cpu1.tid
    s.apply(Run(1))
    return s, [v.message for v in check(s, full=True)]


UAF_MESSAGES = [
    "CPU1 alloc_pages: rmqueue_bulk refills a pageset zone_pcp_reset freed (use-after-free)",
    "CPU1 alloc_pages: rmqueue_pcplist adds the refill to the count of a pageset "
    "zone_pcp_reset freed (use-after-free)",
]


def test_an_allocation_inside_its_pcp_section_across_zone_pcp_reset_uses_the_freed_pageset() -> (
    None
):
    """docs/v6.1.md, "PCP-UAF": nothing between ``zone_pcp_enable`` and ``zone_pcp_reset``
    (6.1 MH 1925-1935) waits for CPU1, IRQ-off in ``rmqueue_pcplist`` since its trylock."""
    s, messages = zone_reset_uaf("v6.1")
    assert messages == UAF_MESSAGES
    assert s.zone.pageset_is_boot and not any(pcp.freed for pcp in s.pcp)


def flush_work_wait(profile: str) -> tuple[System, str]:
    """CPU1's allocation enters its pcp section after ``zone_pcp_disable``'s drain (the
    refill of one page is due); CPU0's offline of block 0 (others stay online) runs until
    it blocks: the wait it blocks in."""
    s = System(get_profile(profile), Geometry())
    offline_until(s, lambda s: s.pcp_disabled)
    s.apply(Start(1, "alloc_pages", (0, MT.UNMOVABLE)))
    while s.cpus[0].task is not None and s.cpus[0].task.runnable(s):
        s.apply(Step(0))
    offline = s.cpus[0].task
    assert offline is not None and offline.wait is not None
    return s, offline.wait.describe()


def test_mem_going_offline_waits_for_a_cpu_inside_its_irq_off_pcp_section() -> None:
    """6.1 MH 1863 ``memory_notify(MEM_GOING_OFFLINE)``: SLUB's ``flush_all_cpus_locked``
    (6.1 mm/slub.c 2754) queues ``flush_cpu_slab`` on CPU1 and flushes it; CPU1's kworker runs
    only once its IRQ-off section ends, and then the offline goes on."""
    s, wait = flush_work_wait("v6.1")
    assert wait == "flush_work(flush_cpu_slab), CPU1 not preemptible"
    assert [u.kind for u in s.iso_users] == ["offline"]
    s.apply(Run(1))
    assert s.cpus[0].task is not None and s.cpus[0].task.runnable(s)


@pytest.mark.parametrize("profile", ["v6.1", "v6.12"])
def test_a_failed_test_pages_isolated_retries_the_offline_never_aborts_it(profile: str) -> None:
    # 6.1/6.12 offline_pages: each pass sets ret from scan_movable_pages again, so a failed
    # test_pages_isolated only retries; with no signal delivered no offline is aborted (the
    # model kept the test's EBUSY into the next pass and aborted: seeds 33, 41 / 23, 31 here).
    p = get_profile(profile)
    for seed in (23, 31, 33, 41, 70):
        rng, s = random.Random(seed), System(p, geometry_for(profile))
        for _ in range(300):
            actions = [a for a in s.enabled() if not isinstance(a, Signal)]
            if not actions:
                break
            s.apply(rng.choice(actions))
        assert s.events.get("offline aborted by a signal", 0) == 0, seed


def test_the_head_alloc_contig_range_frees_back_is_its_own_until_freed() -> None:
    # A contig whose free buddy starts below its range takes the buddy from outer_start and
    # frees the head back one page at a time; until each is freed it is the contig's, not a
    # page the driver may free. The model left them in the pool: pct seed 6 freed one, then
    # the contig's own free of it crashed the model (KeyError in System.release).
    c = load_engines()["pct"](V61, GEO, 6, budget_for("pct", 60, 60.0))
    assert c.failure is not None and c.failure.violation.invariant in KNOWN_FINDINGS["v6.1"]
