"""The undo window of an isolation pass (docs/fidelity.md E1): both ways a fallback steal can
rewrite a pageblock that is still ISOLATE are accounted as the known defect."""

import pytest
from helpers import free_blocks, holds
from test_isolation import VERSIONS, alloc, undo_after_first_pageblock

from pcpfuzz.actions import Step
from pcpfuzz.constants import MT
from pcpfuzz.invariants import check

E1 = "known defect: a fallback steal overwrote an ISOLATE pageblock"


@pytest.mark.parametrize("profile", VERSIONS)
def test_whole_pageblock_steal_in_the_undo_window_is_the_known_leak(profile: str) -> None:
    """``steal_suitable_fallback``'s whole-block branch: an order-1 block of the still-ISOLATE
    pageblock 1 sits on the MOVABLE list; an UNMOVABLE order-1 allocation falls back to it,
    ``move_freepages_block`` moves its pageblock's free pages (2 of 4, half) and
    ``set_pageblock_migratetype`` claims it for UNMOVABLE."""
    s = undo_after_first_pageblock(profile)
    assert alloc(s, 2, MT.MOVABLE) == 0  # pfn 4-7 (pageblock 1) on the MOVABLE list
    while s.zone.free_list[3][MT.MOVABLE]:  # no larger fallback candidate is left
        alloc(s, 3, MT.MOVABLE)
    assert alloc(s, 1, MT.MOVABLE) == 4  # pfn 6-7 stay on the MOVABLE list
    assert (6, 1, "MOVABLE") in free_blocks(s) and s.pageblock_mt[1] == MT.ISOLATE
    assert alloc(s, 1, MT.UNMOVABLE) == 6
    assert s.events["fallback steal"] == 1 and s.events[E1] == 1
    assert s.pageblock_mt[1] == MT.UNMOVABLE and s.known_isolate_drift == 1
    holds(s)
    while s.cpus[1].task is not None:
        s.apply(Step(1))
        assert check(s, full=True) == check(s) == []
    assert MT.ISOLATE not in s.pageblock_mt
    assert s.zone.nr_isolate_pageblock == s.known_isolate_drift == 1  # leaked for good
    holds(s)
