"""Page isolation (spec §9, §12): isolating and unisolating pageblocks, the isolation test,
``alloc_contig_range``, and two accounting defects of the undo pass that the kernel code has
in every version (a finding of the model; see docs/fidelity.md)."""

import pytest
from helpers import finish_task, free_blocks, holds, kernel_task, make, run_gen

from pcpfuzz.actions import RunWork, Signal, Start, Step
from pcpfuzz.constants import EBUSY, MT
from pcpfuzz.invariants import check
from pcpfuzz.liveness import finish
from pcpfuzz.mm.isolation import set_migratetype_isolate
from pcpfuzz.mm.isolation import test_pages_isolated as pages_isolated
from pcpfuzz.system import System

VERSIONS = ["v5.9-nofix", "v5.10", "v5.11"]


def isolate(s: System, pfn: int) -> int | None:
    return run_gen(set_migratetype_isolate(s, kernel_task(1), pfn, MT.MOVABLE))


def alloc(s: System, order: int, mt: int) -> int:
    """Allocate on CPU0 to the end; the new block's pfn."""
    before = set(s.pool())
    s.apply(Start(0, "alloc_pages", (order, mt)))
    while s.cpus[0].task is not None:
        s.apply(Step(0))
    (pfn,) = set(s.pool()) - before
    return pfn


def test_isolating_a_pageblock_moves_its_free_blocks_and_uncounts_them() -> None:
    s = make("v5.11")
    assert isolate(s, 8) == 0
    assert (8, 3, "ISOLATE") in free_blocks(s)
    assert (s.zone.nr_free_pages, s.zone.nr_isolate_pageblock) == (56, 1)
    assert isolate(s, 8) == EBUSY  # already ISOLATE: someone else holds it
    assert s.zone.nr_isolate_pageblock == 1


def test_an_unmovable_page_fails_isolation_outside_zone_movable() -> None:
    s = make("v5.11")
    pfn = alloc(s, 0, MT.UNMOVABLE)
    assert isolate(s, pfn) == EBUSY
    assert s.events["isolation failed: unmovable page"] == 1
    movable = make("v5.11", movable_zone=True)
    pfn = alloc(movable, 0, MT.UNMOVABLE)
    assert isolate(movable, pfn) == 0


def test_a_cma_pageblock_is_isolated_only_for_a_cma_caller() -> None:
    s = make("v5.11", cma_pageblocks=(0, 1))
    assert isolate(s, 0) == EBUSY
    assert run_gen(set_migratetype_isolate(s, kernel_task(1), 0, MT.CMA)) == 0


@pytest.mark.parametrize("profile", VERSIONS)
def test_a_failed_start_isolate_page_range_undoes_the_pageblocks_done(profile: str) -> None:
    s = make(profile)
    pfn = alloc(s, 0, MT.UNMOVABLE)  # pfn 56: the third pageblock of block 3
    assert pfn == 56
    s.apply(Start(1, "offline_pages", (3,)))
    assert finish_task(s, 1, checked=True) == EBUSY
    assert s.events["offline failed: isolation"] == 1
    assert MT.ISOLATE not in s.pageblock_mt and s.zone.nr_isolate_pageblock == 0
    assert s.pcp_batch_high_lock.owner is None
    holds(s)


def test_pages_isolated_needs_every_page_in_the_buddy() -> None:
    s = make("v5.11")
    pfn = alloc(s, 0, MT.MOVABLE)
    start = pfn & ~7
    t = kernel_task(1)
    assert run_gen(pages_isolated(s, t, start, start + 8)) == EBUSY  # not isolated
    isolate(s, start)
    isolate(s, start + 4)
    assert run_gen(pages_isolated(s, t, start, start + 8)) == EBUSY  # pfn allocated
    assert run_gen(pages_isolated(s, t, start - 8, start)) == EBUSY  # phase 1
    s.apply(Start(0, "drain_local_pages", ()))
    s.apply(Start(0, "free_pages", (pfn,)))
    assert run_gen(pages_isolated(s, t, start, start + 8)) == EBUSY  # in flight
    s.apply(Step(0))
    assert run_gen(pages_isolated(s, t, start, start + 8)) == 0


@pytest.mark.parametrize("profile", VERSIONS)
def test_alloc_contig_range_migrates_takes_and_unisolates(profile: str) -> None:
    s = make(profile)
    pfn = alloc(s, 1, MT.MOVABLE)
    start = pfn & ~7
    s.apply(Start(1, "alloc_contig_range", (start,)))
    assert finish_task(s, 1, checked=True) == 0
    assert s.events["page migrated"] == 1 and s.events["alloc_contig_range succeeded"] == 1
    assert set(range(start, start + 8)) <= set(s.pool())
    assert all(s.allocated[p].order == 0 for p in range(start, start + 8))
    assert MT.ISOLATE not in s.pageblock_mt and s.zone.nr_isolate_pageblock == 0
    assert finish(s) == [] and check(s) == []


def test_overlapping_isolation_users_exclude_each_other() -> None:
    s = make("v5.10")
    s.apply(Start(1, "offline_pages", (1,)))
    while not s.iso_users:
        s.apply(Step(1))
    s.apply(Start(0, "alloc_contig_range", (16,)))
    while s.cpus[0].task is not None:
        s.apply(Step(0))
    assert s.events["alloc_contig_range failed: isolation"] == 1
    assert s.iso_users[0].kind == "offline"
    holds(s)


def undo_after_first_pageblock(profile: str) -> System:
    """Offline block 0 (all free) with a signal: it isolates, then undoes. Stop the undo pass
    right after it unisolated pageblock 0, whose order-3 block (pfn 0-7) is back on the MOVABLE
    list while pageblock 1 (pfn 4-7) is still ISOLATE (spec §15 FL-TYPE: every version)."""
    s = make(profile)
    s.apply(Start(1, "offline_pages", (0,)))
    s.apply(Signal(1))
    seen = False
    while not (seen and s.pageblock_mt[0] != MT.ISOLATE):
        seen = seen or s.pageblock_mt[0] == MT.ISOLATE
        s.apply(Step(1) if s.cpus[1].task.runnable(s) else RunWork(s.runnable_work()[0]))
    assert s.pageblock_mt[1] == MT.ISOLATE and s.isolation_passes == 1
    assert (0, 3, "MOVABLE") in free_blocks(s)
    # Other CPUs' allocations use up the order-3 MOVABLE blocks queued before it.
    while s.zone.free_list[3][MT.MOVABLE][0] != 0:
        alloc(s, 3, MT.MOVABLE)
    return s


@pytest.mark.parametrize("profile", VERSIONS)
def test_undo_pass_refree_of_a_split_block_counts_it_twice(profile: str) -> None:
    s = undo_after_first_pageblock(profile)
    assert alloc(s, 2, MT.MOVABLE) == 0  # splits the block: pfn 4-7 go on the MOVABLE list
    assert (4, 2, "MOVABLE") in free_blocks(s)
    s.apply(Step(1))  # unset pageblock 1: re-free trick on a block that is already counted
    assert s.pageblock_mt[1] == MT.MOVABLE and (4, 2, "MOVABLE") in free_blocks(s)
    listed = sum(1 << order for _pfn, order, mt in free_blocks(s) if mt != "ISOLATE")
    assert s.zone.nr_free_pages == listed + 4  # the kernel's counter is 4 pages too high
    assert s.known_free_drift == 4
    assert s.events["known defect: NR_FREE_PAGES drift in an isolation undo window"] == 1
    holds(s)  # FREECOUNT compares against the known drift, exact otherwise


@pytest.mark.parametrize("profile", VERSIONS)
def test_undo_pass_fallback_steal_leaks_nr_isolate_pageblock(profile: str) -> None:
    s = undo_after_first_pageblock(profile)
    assert alloc(s, 3, MT.UNMOVABLE) == 0  # falls back to MOVABLE, claims both pageblocks
    assert s.events["known defect: a fallback steal overwrote an ISOLATE pageblock"] == 1
    assert s.pageblock_mt[0:2] == [MT.UNMOVABLE, MT.UNMOVABLE]
    while s.cpus[1].task is not None:
        s.apply(Step(1))
    assert MT.ISOLATE not in s.pageblock_mt
    assert s.zone.nr_isolate_pageblock == s.known_isolate_drift == 1  # leaked for good
    holds(s)  # ISO-COUNT compares against the known leak, exact otherwise
