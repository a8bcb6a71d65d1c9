"""CMA in the search (issue 11): the campaign geometries of the fixed kernels and the property
suite's drawn geometries have CMA areas, and a short campaign of each engine reaches the CMA
branches of ``__rmqueue`` (each takes CMA pages, so NR_FREE_CMA_PAGES moves, and FREECOUNT
compares it after every action), ``has_unmovable_pages`` and FL-TYPE's CMA clause."""

from __future__ import annotations

import pytest
from hypothesis import find

from pcpfuzz.constants import MT
from pcpfuzz.engines.base import budget_for
from pcpfuzz.engines.choice import Chooser, draw_swarm
from pcpfuzz.engines.native import PolicyFactory, episode_rng, run_episode
from pcpfuzz.engines.pct import pct_policy
from pcpfuzz.engines.registry import load_engines
from pcpfuzz.ladder import geometry_for
from pcpfuzz.profiles import LADDER, get_profile
from pcpfuzz.system import System
from strategies import geometries

ENGINES = load_engines()
CMA_EVENTS = (
    "__rmqueue: CMA first (more than half the free pages are CMA)",
    "__rmqueue: CMA when the requested type ran out",
    "has_unmovable_pages: a CMA pageblock for a non-CMA caller",
)
EXAMPLES = 300
"""Examples of a short campaign: the rarest branch, CMA when MOVABLE ran out, needs the zone
nearly full (random: 7 of the first 100 examples on v5.10; pct: none of 100, some of 300)."""
POLICIES: dict[str, PolicyFactory] = {
    "random": lambda s, rng, _b: Chooser(rng, draw_swarm(rng, s.profile)),
    "pct": pct_policy(),
}


def test_every_rung_is_fuzzed_with_an_aligned_cma_area() -> None:
    for profile in LADDER:
        geo = geometry_for(profile.name)
        assert geo.cma_pageblocks, profile.name
        cma_pages = len(geo.cma_pageblocks) << geo.pageblock_order
        assert System(profile, geo).zone.nr_free_cma_pages == cma_pages


PAIRS = [("random", "v5.10"), ("pct", "v5.11")]


@pytest.mark.parametrize(("engine", "profile"), PAIRS)
def test_a_short_campaign_reaches_the_cma_branches(engine: str, profile: str) -> None:
    budget = budget_for(engine, EXAMPLES, 600.0)
    c = ENGINES[engine](get_profile(profile), geometry_for(profile), 0, budget)
    assert c.failure is None, c.failure and c.failure.violation
    missed = [e for e in CMA_EVENTS if not c.events.get(e)]
    assert not missed, f"{engine} on {profile} never reached {missed}"


@pytest.mark.parametrize(("engine", "profile"), PAIRS)
def test_fl_type_compares_free_cma_blocks(engine: str, profile: str) -> None:
    """FL-TYPE's CMA clause has something to compare: outside isolation passes, free blocks on
    the CMA lists, in many different layouts (CMA blocks split, taken and freed)."""
    geo = geometry_for(profile)
    layouts: set[tuple] = set()
    make = POLICIES[engine]
    for index in range(300):
        s = System(get_profile(profile), geo)
        budget = budget_for(engine, 1, 1.0)
        inner = make(s, episode_rng(engine, 0, index), budget)

        def policy(s: System, inner=inner):
            if not s.isolation_passes:
                cma = tuple(tuple(by_mt[MT.CMA]) for by_mt in s.zone.free_list)
                if any(cma):
                    layouts.add(cma)
            return inner(s)

        run_episode(s, policy, budget.steps)
    assert len(layouts) >= 3, layouts  # the boot layout and at least two others


def test_drawn_geometries_have_aligned_cma_areas_and_movable_zones() -> None:
    """Every draw is a valid Geometry (the constructor checks CMA alignment); some have CMA
    areas, of more than one area, and some are ZONE_MOVABLE."""
    cma = find(geometries(), lambda g: len(g.cma_pageblocks) > 0)
    assert cma.boot_mt(cma.cma_pageblocks[0]) == MT.CMA
    two = find(
        geometries(), lambda g: g.max_order - 1 > g.pageblock_order and len(g.cma_pageblocks) >= 4
    )
    assert len(two.cma_pageblocks) % 2 == 0
    assert find(geometries(), lambda g: g.movable_zone).movable_zone
