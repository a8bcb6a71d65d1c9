"""ISO-REST (issue 11): at rest, with no task running, no online pageblock is left ISOLATE
without an isolation user. Every path that isolates unisolates what it does not offline: a
signalled offline, a failed offline, a failed contiguous allocation, on every version."""

import pytest
from helpers import finish_task, holds, make, names, step_until
from test_isolation import alloc

import pcpfuzz.mm.contig
from pcpfuzz.actions import Signal, Start, Step
from pcpfuzz.constants import EBUSY, EINTR, MT
from pcpfuzz.invariants import applicable, check
from pcpfuzz.liveness import finish
from pcpfuzz.profiles import PROFILES
from pcpfuzz.system import System

KERNELS = ["v5.9-nofix", "v5.10", "v5.10+p6", "v5.11", "v6.1"]


def at_rest(s: System) -> None:
    """Bring ``s`` to rest; every invariant holds there (in full and incrementally)."""
    assert finish(s) == []
    assert not s.tasks() and MT.ISOLATE not in s.pageblock_mt
    assert check(s, full=True) == check(s) == []


def test_iso_rest_applies_to_every_profile() -> None:
    assert all("ISO-REST" in {i.name for i in applicable(p)} for p in PROFILES.values())


@pytest.mark.parametrize("profile", KERNELS)
def test_a_signalled_offline_leaves_nothing_isolated(profile: str) -> None:
    s = make(profile)
    block = alloc(s, 0, MT.MOVABLE) // s.geo.block_pages  # something to migrate
    s.apply(Start(1, "offline_pages", (block,)))
    step_until(s, 1, lambda x: MT.ISOLATE in x.pageblock_mt, checked=True)
    s.apply(Signal(1))
    assert finish_task(s, 1, checked=True) == EINTR
    at_rest(s)


@pytest.mark.parametrize("profile", KERNELS)
def test_a_failed_offline_leaves_nothing_isolated(profile: str) -> None:
    s = make(profile)
    assert alloc(s, 0, MT.UNMOVABLE) == 56  # the third pageblock of block 3
    s.apply(Start(1, "offline_pages", (3,)))
    assert finish_task(s, 1, checked=True) == EBUSY
    at_rest(s)


@pytest.mark.parametrize("profile", KERNELS)
def test_failed_contiguous_allocations_leave_nothing_isolated(profile: str) -> None:
    s = make(profile)
    assert alloc(s, 0, MT.UNMOVABLE) == 56
    s.apply(Start(1, "alloc_contig_range", (56,)))  # isolation fails
    assert finish_task(s, 1, checked=True) == EBUSY
    pfn = alloc(s, 1, MT.MOVABLE)  # order 1: freed straight to the buddy
    s.apply(Start(0, "free_pages", (pfn,)))  # in flight: isolation passes, the test fails
    assert s.cpus[0].task is not None
    s.apply(Start(1, "alloc_contig_range", (pfn & ~7,)))
    assert finish_task(s, 1, checked=True) == EBUSY
    assert s.events["alloc_contig_range failed: busy page"] == 1
    at_rest(s)


def test_an_undo_that_skips_a_pageblock_breaks_iso_rest_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A mutant undo that forgets the range's last pageblock: the counter still counts it, its
    free pages are on the ISOLATE list, so only ISO-REST sees the pageblock lost for good."""
    undo = pcpfuzz.mm.contig.undo_isolate_page_range

    def short_undo(s: System, t, start: int, end: int, mt: int):
        return (yield from undo(s, t, start, end - s.geo.pageblock_nr_pages, mt))

    monkeypatch.setattr(pcpfuzz.mm.contig, "undo_isolate_page_range", short_undo)
    s = make("v5.11")
    s.apply(Start(1, "alloc_contig_range", (8,)))
    while s.cpus[1].task is not None:
        s.apply(Step(1))
        if s.cpus[1].task is not None:
            holds(s)  # the user is running: nothing to see yet
    assert s.pageblock_mt[3] == MT.ISOLATE
    assert names(check(s, full=True)) == names(check(s)) == ["ISO-REST"]
    assert "online pageblocks [3] are ISOLATE" in str(check(s)[0])
