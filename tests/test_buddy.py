"""The buddy core (spec §3): merging and its isolation restriction, splitting, list placement,
``move_freepages_block``, the free counters, and unisolation's re-free trick (spec §9.2)."""

import pytest
from helpers import free_blocks, give, holds, isolate_pageblock, make, take_all

from pcpfuzz.actions import Start, Step
from pcpfuzz.constants import MT
from pcpfuzz.mm.buddy import (
    __rmqueue_smallest,
    del_page_from_free_list,
    expand,
    free_one_page,
    move_freepages_block,
)
from pcpfuzz.mm.isolation import unset_migratetype_isolate

M, U, ISO = "MOVABLE", "UNMOVABLE", "ISOLATE"


def isolate(s, *pfns: int) -> None:
    """``set_migratetype_isolate`` on the pageblocks of ``pfns`` (it must succeed)."""
    for pfn in pfns:
        assert isolate_pageblock(s, pfn) == 0


def test_order0_frees_merge_up_to_max_order() -> None:
    s = make("v5.10")
    take_all(s)
    give(s, 0)
    assert free_blocks(s) == {(0, 0, M)}
    give(s, 1)
    assert free_blocks(s) == {(0, 1, M)}
    give(s, 3)
    assert free_blocks(s) == {(0, 1, M), (3, 0, M)}
    give(s, 2)
    assert free_blocks(s) == {(0, 2, M)}
    give(s, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    # MAX_ORDER 4: two order-3 buddies never merge.
    assert free_blocks(s) == {(0, 3, M), (8, 3, M)}
    assert s.zone.nr_free_pages == 16
    assert s.zone.nr_free == [0, 0, 0, 2]
    holds(s)


def test_merging_below_pageblock_order_ignores_the_types() -> None:
    s = make("v5.10")
    take_all(s)
    s.release(0)
    del s.inflight[0]
    free_one_page(s, 0, 0, MT.UNMOVABLE)
    s.release(1)
    del s.inflight[1]
    free_one_page(s, 1, 0, MT.MOVABLE)
    assert free_blocks(s) == {(0, 1, M)}
    holds(s)


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.10", "v5.11"])
def test_no_merge_across_an_isolated_pageblock_boundary(profile: str) -> None:
    s = make(profile)
    take_all(s)
    isolate(s, 4)
    give(s, 4, 5, 6, 7)
    give(s, 0, 1, 2, 3)
    assert free_blocks(s) == {(0, 2, M), (4, 2, ISO)}
    assert s.zone.nr_free_pages == 4  # the ISOLATE block is not counted
    holds(s)


def test_isolation_elsewhere_does_not_stop_a_same_type_merge() -> None:
    s = make("v5.10")
    take_all(s)
    isolate(s, 60)
    give(s, 0, 1, 2, 3, 4, 5, 6, 7)
    assert (0, 3, M) in free_blocks(s)
    holds(s)


def test_rmqueue_smallest_takes_the_lowest_part_of_the_smallest_block() -> None:
    s = make("v5.10")
    assert __rmqueue_smallest(s, 0, MT.MOVABLE) == 56
    assert {(60, 2, M), (58, 1, M), (57, 0, M)} <= free_blocks(s)
    assert s.cached_mt[56] == MT.MOVABLE
    assert __rmqueue_smallest(s, 2, MT.MOVABLE) == 60  # order 2 exists: no split
    assert __rmqueue_smallest(s, 1, MT.MOVABLE) == 58
    assert __rmqueue_smallest(s, 1, MT.MOVABLE) == 48  # the head of the order-3 list
    assert {(52, 2, M), (50, 1, M)} <= free_blocks(s)
    assert __rmqueue_smallest(s, 0, MT.UNMOVABLE) is None  # no fallback at this level


def test_expand_puts_the_upper_halves_at_the_list_heads() -> None:
    s = make("v5.10")
    __rmqueue_smallest(s, 0, MT.MOVABLE)  # lists now hold 57, 58 and 60
    del_page_from_free_list(s, 48, 3)
    expand(s, 48, 0, 3, MT.MOVABLE)
    fl = s.zone.free_list
    assert (fl[0][MT.MOVABLE], fl[1][MT.MOVABLE], fl[2][MT.MOVABLE]) == (
        [49, 57],
        [50, 58],
        [52, 60],
    )


@pytest.mark.parametrize(("profile", "order"), [("v5.9-nofix", [40, 24]), ("v5.10", [24, 40])])
def test_move_to_free_list_head_in_v5_9_tail_from_v5_10(profile: str, order: list[int]) -> None:
    s = make(profile)
    assert move_freepages_block(s, 24, MT.UNMOVABLE) == (8, 0)
    assert move_freepages_block(s, 40, MT.UNMOVABLE) == (8, 0)
    assert s.zone.free_list[3][MT.UNMOVABLE] == order


def test_buddy_merge_likely_sends_a_block_to_the_tail() -> None:
    s = make("v5.10")
    take_all(s)
    give(s, 0, 1, 8)
    give(s, 3)  # its order-1 buddy pair (0-1) is free: tail
    assert s.zone.free_list[0][MT.MOVABLE] == [8, 3]
    give(s, 11)  # 8 is free but only at order 0: head
    assert s.zone.free_list[0][MT.MOVABLE] == [11, 8, 3]


@pytest.mark.parametrize(
    ("profile", "head"),
    [("v5.9-nofix", [56, 48, 40]), ("v5.10", [40, 32, 24]), ("v5.11", [40, 32, 24])],
)
def test_onlined_blocks_go_to_the_head_in_v5_9_and_to_the_tail_from_v5_10(
    profile: str, head: list[int]
) -> None:
    s = make(profile, online_blocks=3)
    s.apply(Start(0, "online_pages", (3,)))
    while s.cpus[0].task is not None:
        s.apply(Step(0))
    fl = s.zone.free_list[3][MT.MOVABLE]
    assert fl[:3] == head
    assert sorted(fl) == [0, 8, 16, 24, 32, 40, 48, 56]
    holds(s)


def test_move_freepages_block_moves_the_heads_inside_the_pageblock() -> None:
    s = make("v5.10")
    take_all(s)
    give(s, 4, 5, 7)  # pb 1: order-1 at 4, order-0 at 7, pfn 6 allocated movable
    assert move_freepages_block(s, 5, MT.UNMOVABLE) == (3, 1)
    assert free_blocks(s) == {(4, 1, U), (7, 0, U)}
    assert s.zone.nr_free_pages == 3  # moving changes no counter
    fresh = make("v5.10")
    assert move_freepages_block(fresh, 4, MT.UNMOVABLE) == (0, 0)  # block 0 is headed in pb 0


def test_free_counters_with_cma_balancing() -> None:
    # 40 of 64 pages are CMA: more than half the free pages, so MOVABLE takes CMA first.
    s = make("v5.10", cma_pageblocks=tuple(range(10)))
    assert (s.zone.nr_free_pages, s.zone.nr_free_cma_pages) == (64, 40)
    s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
    s.apply(Step(0))
    pfn = s.pool()[0]
    assert s.cached_mt[pfn] == MT.CMA
    assert s.pcp[0].lists[MT.MOVABLE] and s.pcp[0].count == 1  # CMA rides on the MOVABLE list
    assert (s.zone.nr_free_pages, s.zone.nr_free_cma_pages) == (62, 38)
    holds(s)
    s.apply(Start(0, "free_pages", (pfn,)))
    s.apply(Step(0))
    s.apply(Start(0, "drain_local_pages", ()))
    assert (s.zone.nr_free_pages, s.zone.nr_free_cma_pages) == (64, 40)
    holds(s)


def test_unmovable_requests_never_take_cma() -> None:
    s = make("v5.10", cma_pageblocks=tuple(range(10)))
    for _ in range(4):
        s.apply(Start(0, "alloc_pages", (3, MT.UNMOVABLE)))
    assert s.pool() == [40, 48, 56]
    assert s.events["allocation failed"] == 1
    assert (s.zone.nr_free_pages, s.zone.nr_free_cma_pages) == (40, 40)
    assert s.events["fallback steal"] == 3
    assert s.pageblock_mt[10:16] == [MT.UNMOVABLE] * 6  # whole blocks change owner
    s.apply(Start(0, "alloc_pages", (3, MT.MOVABLE)))  # ALLOC_CMA: MOVABLE may use CMA
    assert len(s.pool()) == 4
    assert s.zone.nr_free_cma_pages == 32
    holds(s)


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.10", "v5.11"])
def test_unisolation_refrees_a_pageblock_order_block_to_merge_it(profile: str) -> None:
    s = make(profile)
    take_all(s)
    isolate(s, 4)
    give(s, 0, 1, 2, 3, 4, 5, 6, 7)
    assert free_blocks(s) == {(0, 2, M), (4, 2, ISO)}
    unset_migratetype_isolate(s, 4, MT.MOVABLE)
    assert free_blocks(s) == {(0, 3, M)}
    assert s.events["unisolation re-freed a block to merge it"] == 1
    assert (s.zone.nr_free_pages, s.zone.nr_isolate_pageblock) == (8, 0)
    holds(s)


@pytest.mark.parametrize(
    ("profile", "refreed", "head"),
    [("v5.9-nofix", True, True), ("v5.10", True, False), ("v5.11", False, False)],
)
def test_unisolation_of_a_max_order_block(profile: str, refreed: bool, head: bool) -> None:
    # 2484be0f88dc (v5.11) skips the re-free trick for MAX_ORDER-1 blocks, which cannot merge.
    # Without it the block is re-freed: at the head in v5.9, at the tail (FPI_TO_TAIL) later.
    s = make(profile)
    isolate(s, 8, 12)
    assert (8, 3, ISO) in free_blocks(s)
    assert s.zone.nr_free_pages == 56
    unset_migratetype_isolate(s, 8, MT.MOVABLE)
    unset_migratetype_isolate(s, 12, MT.MOVABLE)
    assert ("unisolation re-freed a block to merge it" in s.events) == refreed
    fl = s.zone.free_list[3][MT.MOVABLE]
    assert fl.index(8) == (0 if head else len(fl) - 1)
    assert (s.zone.nr_free_pages, s.zone.nr_isolate_pageblock) == (64, 0)
    holds(s)


@pytest.mark.parametrize(("freed", "claimed"), [((0, 1), True), ((0,), False)])
def test_a_partial_steal_claims_the_pageblock_when_half_is_free_or_alike(
    freed: tuple[int, ...], claimed: bool
) -> None:
    # steal_suitable_fallback for an UNMOVABLE request from a MOVABLE pageblock whose other
    # pages are movable: claim it when the free pages reach half a pageblock (2 of 4).
    s = make("v5.10")
    take_all(s)
    give(s, *freed)
    s.apply(Start(0, "alloc_pages", (0, MT.UNMOVABLE)))
    s.apply(Step(0))
    assert s.pool()[0] == 0 and s.cached_mt[0] == MT.UNMOVABLE
    assert s.events["fallback steal"] == 1
    assert s.pageblock_mt[0] == (MT.UNMOVABLE if claimed else MT.MOVABLE)
    holds(s)
