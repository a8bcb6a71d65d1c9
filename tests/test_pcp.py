"""The per-CPU page lists (spec §4-§7): the bulk free's round robin and clamp, the commit's
flush, the split allocation step, per-CPU drains, ``drain_all_pages`` and its forced form."""

import pytest
from helpers import free_blocks, holds, isolate_pageblock, lines, make, take_all, to_pcp

from pcpfuzz.actions import Run, RunWork, Start, Step
from pcpfuzz.constants import MT
from pcpfuzz.mm.pcp import free_pcppages_bulk
from pcpfuzz.state import MutexWait, WorkWait
from pcpfuzz.violation import Hang


def pcp_with(profile: str, **lists: tuple[int, ...]):
    """A system whose CPU0 pcplists hold ``lists`` (pfns pushed in order, so the first is the
    tail), every other page allocated."""
    s = make(profile)
    take_all(s)
    for name, pfns in lists.items():
        for pfn in pfns:
            to_pcp(s, 0, pfn, MT[name])
    return s


def bulk_free(s, count: int) -> list[int]:
    """Run ``free_pcppages_bulk(count)`` on CPU0; the pfns it freed, in selection order."""
    since = len(s.log)
    free_pcppages_bulk(s, 0, count, s.pcp[0])
    text = lines(s, since)[0]
    return [int(p) for p in text[text.index("[") + 1 : text.index("]")].split(", ")]


def test_round_robin_takes_one_tail_page_per_list() -> None:
    s = pcp_with("v5.10", UNMOVABLE=(0, 1, 2), MOVABLE=(8, 9), RECLAIMABLE=(16,))
    assert bulk_free(s, 4) == [8, 16, 0, 9]  # starts at MOVABLE, oldest (tail) first
    assert s.pcp[0].lists == [[2, 1], [], []] and s.pcp[0].count == 2
    holds(s)


def test_round_robin_carries_batch_free_over_empty_lists() -> None:
    # Skipping empty lists raises batch_free, and its leftover is not reset between lists.
    s = pcp_with("v5.10", UNMOVABLE=(0, 1, 2), RECLAIMABLE=(16,))
    assert bulk_free(s, 4) == [16, 0, 1, 2]
    holds(s)


def test_the_only_non_empty_list_gives_everything_needed() -> None:
    s = pcp_with("v5.10", MOVABLE=(8, 9, 10, 11, 12))
    assert bulk_free(s, 3) == [8, 9, 10]
    assert s.pcp[0].lists[MT.MOVABLE] == [12, 11]
    holds(s)


def test_bulk_free_is_clamped_to_the_pcp_count() -> None:
    s = pcp_with("v5.10", MOVABLE=(8, 9))
    assert bulk_free(s, 10) == [8, 9]
    assert s.pcp[0].count == 0
    holds(s)


def test_without_the_clamp_the_bulk_free_searches_forever() -> None:
    s = pcp_with("v5.8-nobulkclamp", MOVABLE=(8, 9))
    with pytest.raises(Hang, match="searches its empty pcplists forever"):
        free_pcppages_bulk(s, 0, 10, s.pcp[0])


def test_bulk_free_rereads_the_pageblock_type_when_the_zone_has_isolated_pageblocks() -> None:
    s = pcp_with("v5.11", MOVABLE=(8, 9))
    isolate_pageblock(s, 8, cpu=1)
    bulk_free(s, 2)
    assert free_blocks(s) == {(8, 1, "ISOLATE")}
    assert s.zone.nr_free_pages == 0
    holds(s)


def test_commit_flushes_a_batch_once_the_count_reaches_high() -> None:
    s = pcp_with("v5.10", MOVABLE=(0, 1, 2, 3, 4, 5, 6))
    assert s.pcp[0].count == 7
    to_pcp(s, 0, 7, MT.MOVABLE)  # count 8 >= high 8: free batch 2 oldest pages
    assert s.pcp[0].count == 6
    assert free_blocks(s) == {(0, 1, "MOVABLE")}
    holds(s)


def test_with_high_zero_a_commit_frees_the_page_it_added() -> None:
    # A 64-page zone in default mode has zone_batchsize 0: high 0, batch 1 (spec §8.1).
    s = make("v5.10", fraction=0)
    assert (s.pcp[0].high, s.pcp[0].batch) == (0, 1)
    s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
    s.apply(Step(0))
    pfn = s.pool()[0]
    assert s.pcp[0].count == 0  # refilled one page and handed it out
    s.apply(Start(0, "free_pages", (pfn,)))
    s.apply(Step(0))  # push: count 1 >= high 0, IRQs stay off
    assert s.pcp[0].lists[MT.MOVABLE] == [pfn] and s.cpus[0].task.irq_off
    s.apply(Step(0))  # the flush takes min(count, batch) = the page just added
    assert s.pcp[0].count == 0 and s.cpus[0].task is None
    assert s.zone.nr_free_pages == 64
    holds(s)


def test_a_free_that_cached_isolate_goes_straight_to_the_buddy() -> None:
    s = make("v5.11")
    s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
    s.apply(Step(0))
    pfn = s.pool()[0]
    isolate_pageblock(s, pfn, cpu=1)
    s.apply(Start(0, "free_pages", (pfn,)))  # prepare reads ISOLATE
    assert s.cached_mt[pfn] == MT.ISOLATE
    s.apply(Step(0))
    assert pfn not in s.pcp[0].lists[MT.MOVABLE]
    assert s.buddy_mt[pfn] == MT.ISOLATE and s.buddy_order[pfn] >= 0
    assert s.events["page freed straight to an ISOLATE list"] == 1
    holds(s)


def test_allocation_reads_batch_in_one_step_and_refills_in_the_next() -> None:
    # Spec §14.2 item 4: the batch read before the refill is stale if it changes in between.
    s = make("v5.10")
    s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
    assert s.cpus[0].task.irq_off and s.pcp[0].count == 0
    assert RunWork(0) not in s.enabled()
    s.apply(Start(1, "percpu_pagelist_fraction", (16,)))
    s.apply(Run(1))  # every CPU now has high 4, batch 1
    assert (s.pcp[0].high, s.pcp[0].batch) == (4, 1)
    since = len(s.log)
    s.apply(Step(0))
    assert "rmqueue_bulk(batch 2): pcp0.lists[MOVABLE] = [56, 57]" in lines(s, since)
    assert s.pool() == [56] and s.pcp[0].lists[MT.MOVABLE] == [57]
    holds(s)


def test_drain_local_pages_empties_this_cpu_only() -> None:
    s = pcp_with("v5.10", MOVABLE=(8, 9))
    to_pcp(s, 1, 16, MT.MOVABLE)
    s.apply(Start(0, "drain_local_pages", ()))
    assert (s.pcp[0].count, s.pcp[1].count) == (0, 1)
    holds(s)


def test_drain_all_pages_skips_a_cpu_it_reads_count_zero_from() -> None:
    s = pcp_with("v5.10", MOVABLE=(8, 9))
    s.apply(Start(1, "drain_all_pages", (1,)))
    s.apply(Step(1))  # reads CPU0: 2
    s.apply(Step(1))  # reads CPU1: 0
    s.apply(Step(1))  # posts and sleeps
    assert [c.work_pending for c in s.cpus] == [True, False]
    assert isinstance(s.cpus[1].task.wait, WorkWait)
    assert "drain_all_pages: drain work posted to CPUs [0]" in lines(s)
    assert s.events["drain_all_pages skipped a CPU"] == 1
    s.apply(RunWork(0))
    s.apply(Step(1))
    assert s.cpus[1].task is None and s.pcp[0].count == 0
    assert s.pcpu_drain_mutex.owner is None
    holds(s)


def test_forced_drain_posts_to_every_online_cpu() -> None:
    # v5.11's zone_pcp_disable (here through the hwpoison user) drains without reading counts.
    s = make("v5.11", nr_cpus=3)
    s.apply(Start(2, "get_hwpoison_page", ()))
    for _ in range(8):
        if s.cpus[2].task.wait is not None:
            break
        s.apply(Step(2))
    assert [c.work_pending for c in s.cpus] == [True, True, True]
    assert "forced drain_all_pages: drain work posted to CPUs [0, 1, 2]" in lines(s)
    assert "drain_all_pages skipped a CPU" not in s.events
    assert RunWork(2) in s.enabled() and Run(2) not in s.enabled()
    s.apply(RunWork(2))
    s.apply(RunWork(0))
    s.apply(RunWork(1))
    s.apply(Step(2))
    assert s.pcp_disabled
    holds(s)
    s.apply(Run(2))
    assert s.cpus[2].task is None and not s.pcp_disabled
    assert [(p.high, p.batch) for p in s.pcp] == [(8, 2)] * 3
    holds(s)


def test_drain_all_pages_null_gives_up_when_a_drain_runs_a_zone_drain_waits() -> None:
    s = pcp_with("v5.10", MOVABLE=(8,))
    s.apply(Start(0, "drain_all_pages", (1,)))  # holds pcpu_drain_mutex
    s.apply(Start(1, "drain_all_pages", (0,)))
    assert s.cpus[1].task is None
    assert s.events["drain_all_pages(NULL) gave up: pcpu_drain_mutex busy"] == 1
    s.apply(Start(1, "drain_all_pages", (1,)))
    assert isinstance(s.cpus[1].task.wait, MutexWait)


def test_free_unref_page_list_keeps_irqs_off_between_commits() -> None:
    s = make("v5.10")
    for _ in range(3):
        s.apply(Start(0, "alloc_pages", (0, MT.MOVABLE)))
        if s.cpus[0].task is not None:
            s.apply(Step(0))
    assert s.pool() == [56, 57, 58] and s.pcp[0].count == 1
    pfns = (56, 57)
    s.apply(Start(1, "drain_all_pages", (1,)))
    s.apply(Run(1))  # posts to CPU0 and sleeps
    s.apply(Start(0, "free_unref_page_list", pfns))  # phase 1: prepares both
    assert RunWork(0) in s.enabled()  # IRQs on between the phases
    s.apply(Step(0))  # commits the first page, IRQs off
    assert s.cpus[0].task.irq_off and RunWork(0) not in s.enabled()
    s.apply(Step(0))
    assert s.cpus[0].task is None and RunWork(0) in s.enabled()
    holds(s)
