"""The v6.1 profile (modern-kernels.md (d)): boot sizing, multi-order pcplists, the owner
trylock fallback, incremental checks equal to full checks (test_corpus_entries replays its
corpus)."""

import random

from pcpfuzz.actions import Start, Step
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.ladder import geometry_for
from pcpfuzz.mm6.pageset import zone_watermarks
from pcpfuzz.profiles import CAMPAIGN, get_profile
from pcpfuzz.system import System

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
