"""The property suite: the state machine on the kernels that must hold every invariant, on
drawn geometries (``pytest -n auto`` runs these; the settings profile sets their budget); and
the bookkeeping the machine relies on."""

import pytest

from pcpfuzz.actions import Run, RunWork, Start
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import get_profile
from pcpfuzz.system import System
from pcpfuzz.trace import execute
from stateful.handles import HandleTable
from stateful.machine import machine_for
from strategies import geometries

HOLDING = ("v5.10", "v5.10+p6", "v5.10+p7", "v5.11")
"""v5.10 and v5.11, and the rungs between that change behaviour (p6 moves the drain out of
isolation, p7 disables pcplists in offline); p1-p5 are refactors, checked equal to v5.10 by
``tests/test_ladder_equivalence.py``."""

# Before patch 7, emptying the zone races with allocations (``machine_for``'s keep_populated,
# ``test_emptying_the_zone_loses_pages_until_patch_7``): those kernels keep it populated.
TestV5_10 = machine_for(get_profile("v5.10"), geometries(), keep_populated=True).TestCase
TestV5_10_P6 = machine_for(get_profile("v5.10+p6"), geometries(), keep_populated=True).TestCase
TestV5_10_P7 = machine_for(get_profile("v5.10+p7"), geometries()).TestCase
TestV5_11 = machine_for(get_profile("v5.11"), geometries()).TestCase


def test_every_holding_profile_has_a_test_case() -> None:
    names = {cls.__qualname__.split(".")[0] for cls in (TestV5_10, TestV5_10_P6, TestV5_10_P7)}
    names.add(TestV5_11.__qualname__.split(".")[0])
    assert names == {"Machine_" + "".join(c if c.isalnum() else "_" for c in p) for p in HOLDING}


ZONE_RESET = (
    Start(0, "offline_pages", (0,)),
    Start(1, "alloc_pages", (0, 1)),
    Run(0),
    Start(0, "online_pages", (0,)),
    Run(0),
    Run(1),
)
"""The suite's shrunk find: CPU1's allocation reads batch 3 with IRQs off; CPU0 offlines the
zone's only block (``zone_pcp_reset`` frees the pagesets) and onlines it again; CPU1 refills
the freed pageset."""
ZONE_RESET_GEOMETRY = Geometry(nr_blocks=2, online_blocks=1, fraction=0, sizing_scale=1024)


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.10", "v5.10+p6"])
def test_emptying_the_zone_loses_pages_until_patch_7(profile: str) -> None:
    out = execute(get_profile(profile), ZONE_RESET_GEOMETRY, ZONE_RESET)
    assert (out.invariant, out.at) == ("CONSERVE", len(ZONE_RESET) - 1)


@pytest.mark.parametrize("profile", ["v5.10+p7", "v5.11"])
def test_the_forced_drain_waits_for_the_allocating_cpu(profile: str) -> None:
    s = System(get_profile(profile), ZONE_RESET_GEOMETRY)
    for action in ZONE_RESET[:3]:
        s.apply(action)
    offline = s.cpus[0].task
    assert offline is not None and offline.wait is not None
    assert offline.wait.describe() == "flush_work(pcpu_drain on CPU0,1)"
    assert s.cpus[1].task is not None and s.cpus[1].task.irq_off


def test_handles_follow_blocks_that_offline_migrates() -> None:
    s = System(get_profile("v5.10"), Geometry())
    handles = HandleTable(s)
    fresh = []
    for action in (Start(0, "alloc_pages", (0, 1)), Run(0), Start(0, "alloc_pages", (0, 1))):
        s.apply(action)
        fresh += handles.update()
    assert [h.pfn for h in fresh] == [56, 57]
    s.apply(Start(1, "offline_pages", (3,)))
    while s.cpus[1].task is not None:
        s.apply(RunWork(0) if s.cpus[0].work_pending else Run(1))
        assert handles.update() == []
    assert s.events["page migrated"] == 2
    assert all(handles.live(h) and not 48 <= h.pfn < 64 for h in fresh)
    assert sorted(h.pfn for h in fresh) == s.pool()


def test_a_dead_handle_resolves_to_the_newest_live_block() -> None:
    s = System(get_profile("v5.11"), Geometry())
    handles = HandleTable(s)
    fresh = []
    for action in (Start(0, "alloc_pages", (0, 1)), Run(0), Start(0, "alloc_pages", (0, 1))):
        s.apply(action)
        fresh += handles.update()
    s.apply(Start(1, "alloc_pages", (1, 1)))
    fresh += handles.update()
    s.apply(Start(0, "free_unref_page_list", (56, 57)))
    s.apply(Run(0))
    handles.update()
    dead, _, newest = fresh
    assert not handles.live(dead) and dead.pfn is None
    assert handles.resolve(dead) == newest.pfn
