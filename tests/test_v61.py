"""The v6.1 profile (modern-kernels.md (d)): boot sizing, multi-order pcplists, the owner
trylock fallback, incremental checks equal to full checks (test_corpus_entries replays its
corpus)."""

import random
from pathlib import Path

from pcpfuzz.actions import CpuDown, CpuUp, Run, Start, Step
from pcpfuzz.constants import ENOENT, MT
from pcpfuzz.corpus import load_entry
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check, check_pcp_off
from pcpfuzz.ladder import geometry_for
from pcpfuzz.mm6.page_isolation import split_free_page
from pcpfuzz.mm6.pageset import zone_watermarks
from pcpfuzz.profiles import CAMPAIGN, get_profile
from pcpfuzz.state import Task
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


def test_incremental_checks_equal_full_checks_on_random_walks() -> None:
    for seed in range(12):
        rng = random.Random(seed)
        s = System(V61, GEO)
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
