"""The incremental invariant check (``check(s)``) reports exactly what the full one
(``check(s, full=True)``) reports: after every action of random walks on every profile, and
after corruptions injected into the state mid-walk (so the verdicts compared are not all empty).
Every test here runs with ``pcpfuzz.dirty``'s verify mode on: a write the model does not mark
fails the test even where the verdicts happen to agree.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest

from pcpfuzz import dirty
from pcpfuzz.constants import MT
from pcpfuzz.dirty import ALLOC, CACHED, FREE, FREECOUNT, PBMT, PCP, PRESENT, UnmarkedWrite
from pcpfuzz.engines.choice import Chooser, draw_swarm
from pcpfuzz.engines.native import episode_rng
from pcpfuzz.geometry import Geometry
from pcpfuzz.incremental import QUICK, RULES
from pcpfuzz.invariants import INVARIANT_NAMES, check
from pcpfuzz.liveness import finish
from pcpfuzz.profiles import PROFILES
from pcpfuzz.system import System

GEOMETRIES = (Geometry(), Geometry(nr_cpus=3, cma_pageblocks=(6, 7), online_blocks=3))


@pytest.fixture(autouse=True)
def verify_marks() -> Iterator[None]:
    """Verify mode on for the systems each test checks."""
    was = dirty.verifying()
    dirty.set_verify(True)
    yield
    dirty.set_verify(was)


def _walk(s: System, rng: random.Random, steps: int, each: Callable[[int], bool]) -> None:
    """Random actions on ``s``; ``each(i)`` after the i-th, stopping when it returns True."""
    choose = Chooser(rng, draw_swarm(rng, s.profile))
    for i in range(steps):
        action = choose(s)
        if action is None or each(i):
            return
        s.apply(action)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=("default", "3cpu-cma-offline"))
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_incremental_equals_full_after_every_action(profile: str, geometry: Geometry) -> None:
    for episode in range(4):
        s = System(PROFILES[profile], geometry)

        def same(i: int, s: System = s, episode: int = episode) -> bool:
            full = check(s, full=True)
            assert check(s) == full, f"{profile} episode {episode} after action {i}"
            return bool(full)

        _walk(s, episode_rng("incremental", 1, episode), 60, same)
        finish(s)
        assert check(s) == check(s, full=True)


def _free_entries(s: System) -> list[tuple[int, int, int]]:
    return [
        (head, order, mt)
        for order, by_mt in enumerate(s.zone.free_list)
        for mt, fl in enumerate(by_mt)
        for head in fl
    ]


def _dup_free_entry(s: System, rng: random.Random) -> None:
    head, order, mt = rng.choice(_free_entries(s))
    s.zone.free_list[order][mt].append(head)


def _drop_free_entry(s: System, rng: random.Random) -> None:
    head, order, mt = rng.choice(_free_entries(s))
    s.zone.free_list[order][mt].remove(head)


def _free_page_on_pcp(s: System, rng: random.Random) -> None:
    head, _order, _mt = rng.choice(_free_entries(s))
    s.pcp[0].lists[MT.MOVABLE].append(head)
    s.pcp[0].count += 1


def _wrong_buddy_mt(s: System, rng: random.Random) -> None:
    head, _order, mt = rng.choice(_free_entries(s))
    s.buddy_mt[head] = MT.RECLAIMABLE if mt != MT.RECLAIMABLE else MT.UNMOVABLE


def _nr_free_pages_off(s: System, _rng: random.Random) -> None:
    s.zone.nr_free_pages += 1


def _unisolated(s: System) -> list[int]:
    """Pageblocks holding a free block and not ISOLATE."""
    pbs = {s.pb(head) for head, _order, _mt in _free_entries(s)}
    return sorted(pb for pb in pbs if s.pageblock_mt[pb] != MT.ISOLATE)


def _pageblock_isolated_silently(s: System, rng: random.Random) -> None:
    s.pageblock_mt[rng.choice(_unisolated(s))] = MT.ISOLATE  # not counted: ISO-COUNT


def _free_page_not_present(s: System, rng: random.Random) -> None:
    head, _order, _mt = rng.choice(_free_entries(s))
    s.page_present[head] = False


def _forget_allocation(s: System, rng: random.Random) -> None:
    del s.allocated[rng.choice(sorted(s.allocated))]


def _mergeable(s: System) -> list[tuple[int, int, int]]:
    """Free entries whose halves would be buddies below the merge limit (pageblock order)."""
    limit = min(s.geo.pageblock_order, s.geo.max_order - 1)
    return [e for e in _free_entries(s) if 1 <= e[1] <= limit]


def _split_without_merge(s: System, rng: random.Random) -> None:
    head, order, mt = rng.choice(_mergeable(s))
    half = order - 1
    s.zone.free_list[order][mt].remove(head)
    s.zone.nr_free[order] -= 1
    for pfn in (head, head + (1 << half)):
        s.zone.free_list[half][mt].append(pfn)
        s.zone.nr_free[half] += 1
        s.buddy_order[pfn] = half
        s.buddy_mt[pfn] = mt


def _pcp_count_off(s: System, _rng: random.Random) -> None:
    s.pcp[-1].count += 1


def _pcp_page_cached_isolate(s: System, rng: random.Random) -> None:
    pages = [(cpu, p) for cpu, pcp in enumerate(s.pcp) for lst in pcp.lists for p in lst]
    s.cached_mt[rng.choice(pages)[1]] = MT.ISOLATE


Corruption = tuple[Callable[[System, random.Random], None], Callable[[System], bool], int]

CORRUPTIONS: dict[str, Corruption] = {
    "duplicate free entry": (_dup_free_entry, lambda s: bool(_free_entries(s)), FREE),
    "lost free entry": (_drop_free_entry, lambda s: bool(_free_entries(s)), FREE),
    "free page on a pcplist": (_free_page_on_pcp, lambda s: bool(_free_entries(s)), PCP),
    "PageBuddy type wrong": (_wrong_buddy_mt, lambda s: bool(_free_entries(s)), FREE),
    "NR_FREE_PAGES off": (_nr_free_pages_off, lambda s: True, FREECOUNT),
    "pageblock isolated silently": (
        _pageblock_isolated_silently,
        lambda s: bool(_unisolated(s)) and s.mem_hotplug_lock.owner is None,
        PBMT,
    ),
    "free page not present": (_free_page_not_present, lambda s: bool(_free_entries(s)), PRESENT),
    "allocation forgotten": (_forget_allocation, lambda s: bool(s.allocated), ALLOC),
    "buddies left unmerged": (_split_without_merge, lambda s: bool(_mergeable(s)), FREE),
    # BUDDY leaves a pageset's count alone while a task holds its pcp->lock (v6.x sections)
    "pcp count off": (_pcp_count_off, lambda s: not s.pcp[-1].locked(), PCP),
    "pcp page cached ISOLATE": (
        _pcp_page_cached_isolate,
        lambda s: any(p.count for p in s.pcp),
        CACHED,
    ),
}
"""Each corruption, when it can be injected, and the parts it writes (which the model would
mark had it written them)."""


def _corrupted(corruption: str, marked: bool, journaled: bool = True) -> Iterator[System]:
    """Systems mid-walk on every profile (three each) that hold no violation, corrupted by
    ``corruption``, its parts marked or not (as written outside the journaling primitives, or,
    without ``journaled``, as if a primitive had forgotten to journal); the checker followed
    each walk."""
    corrupt, possible, parts = CORRUPTIONS[corruption]
    for episode in range(3 * len(PROFILES)):
        profile = sorted(PROFILES)[episode % len(PROFILES)]
        s = System(PROFILES[profile], Geometry())
        rng = episode_rng("corrupt", 2, episode)
        at = rng.randrange(5, 40)

        def step(i: int, s: System = s, at: int = at) -> bool:
            check(s)  # the incremental checker's copies follow the walk
            return i == at

        _walk(s, rng, 60, step)
        if check(s, full=True) or not possible(s):
            continue
        corrupt(s, rng)
        if marked and journaled:
            dirty.touch(s, parts)
        elif marked:
            s.dirty |= parts
        yield s


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_incremental_catches_injected_corruption(corruption: str) -> None:
    tried = 0
    for s in _corrupted(corruption, marked=True):
        full = check(s, full=True)
        assert full, f"{corruption} on {s.profile.name} broke no invariant"
        assert check(s) == full, f"{corruption} on {s.profile.name}"
        tried += 1
    assert tried >= 3, f"{corruption} could be injected only {tried} times"


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_verify_mode_fails_on_an_unmarked_write(corruption: str) -> None:
    part = dirty.names(CORRUPTIONS[corruption][2])[0]
    tried = 0
    for s in _corrupted(corruption, marked=False):
        with pytest.raises(UnmarkedWrite, match=f"wrote {part} without marking it"):
            check(s)
        tried += 1
        if tried == 3:
            return
    pytest.fail(f"{corruption} could be injected only {tried} times")


MOVES = (
    "duplicate free entry",
    "lost free entry",
    "free page on a pcplist",
    "allocation forgotten",
)
"""The corruptions that move blocks (what the journals record)."""


@pytest.mark.parametrize("corruption", MOVES)
def test_verify_mode_fails_on_an_unjournaled_move(corruption: str) -> None:
    tried = 0
    for s in _corrupted(corruption, marked=True, journaled=False):
        with pytest.raises(UnmarkedWrite, match="journal does not match"):
            check(s)
        tried += 1
        if tried == 3:
            return
    pytest.fail(f"{corruption} could be injected only {tried} times")


def test_rules_name_real_invariants() -> None:
    assert set(RULES) <= set(INVARIANT_NAMES)
    assert set(QUICK) <= set(INVARIANT_NAMES) - set(RULES)


def test_a_full_journal_stops_and_makes_the_next_check_prove_nothing_from_it() -> None:
    s = System(PROFILES["v5.11"], Geometry())
    _walk(s, episode_rng("journal", 3, 0), 30, lambda _i: bool(check(s)))
    check(s)
    head, order, mt = _free_entries(s)[0]
    s.free_journal.extend([(head, order, mt, 1)] * (dirty.JOURNAL_LIMIT - len(s.free_journal)))
    dirty.free_moved(s, head, order, mt, -1)
    assert len(s.free_journal) == dirty.JOURNAL_LIMIT
    assert s.dirty & dirty.OPAQUE
    _dup_free_entry(s, episode_rng("journal", 3, 1))  # a move past the limit: not journaled
    assert check(s) == check(s, full=True) != []


def test_each_system_keeps_its_own_memo_across_interleaved_checks() -> None:
    """The memo lives on the system (``System.check_memo``): None until the first check, never
    shared, so two systems checked in turn, one of them corrupted, each get their own verdicts."""
    a, b = (System(PROFILES["v5.11"], Geometry()) for _ in range(2))
    assert a.check_memo is None and b.check_memo is None
    rng_a, rng_b = episode_rng("memo", 1, 0), episode_rng("memo", 1, 0)
    choose_a = Chooser(rng_a, draw_swarm(rng_a, a.profile))
    choose_b = Chooser(rng_b, draw_swarm(rng_b, b.profile))
    for i in range(40):
        for s, choose in ((a, choose_a), (b, choose_b)):
            action = choose(s)
            assert action is not None
            s.apply(action)
            assert check(s) == check(s, full=True), f"after action {i}"
        if i == 20:
            b.zone.nr_free_pages += 1
            b.dirty |= FREECOUNT
    assert a.check_memo is not None and b.check_memo is not None
    assert a.check_memo is not b.check_memo
    assert check(a) == [] and check(b) != []
