"""The strategies draw only what the kernel allows and the model enables, and reach all of it."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.ops import OPS
from pcpfuzz.profiles import PROFILES, VERSIONS
from pcpfuzz.system import System
from stateful.kinds import (
    CHOICES,
    SWARM,
    WEIGHTS,
    choose,
    enabled_kinds,
    pick_choice,
    schedule,
)
from strategies import (
    arguments,
    boot_high_batch,
    contig_alignment,
    contig_ranges,
    geometries,
    memory_blocks,
    migratetypes,
    orders,
    pick,
    profiles,
    stable_choice,
    versions,
)
from strategies.operations import choose_arguments, options


@given(geometries())
def test_geometries_boot_with_active_pcplists(geo: Geometry) -> None:
    assert 2 <= geo.nr_cpus <= 4
    assert 0 < geo.pageblock_order <= geo.max_order - 1
    assert geo.block_pages % max(geo.max_order_nr_pages, geo.pageblock_nr_pages) == 0
    high, batch = boot_high_batch(geo)
    assert high >= 2 and batch >= 1
    s = System(PROFILES["v5.11"], geo)
    assert all((p.high, p.batch) == (high, batch) for p in s.pcp)
    assert check(s) == []


@given(geometries(), st.data())
def test_geometry_level_arguments_are_what_the_kernel_allows(
    geo: Geometry, data: st.DataObject
) -> None:
    assert 0 <= data.draw(orders(geo)) < geo.max_order
    assert data.draw(migratetypes()) in (0, 1, 2)
    start, end = data.draw(contig_ranges(geo))
    align = contig_alignment(geo)
    assert start % align == 0 and end - start == align and end <= geo.nr_pages
    assert 0 <= data.draw(memory_blocks(geo)) < geo.nr_blocks


@given(profiles(), versions())
def test_profiles(p, v) -> None:
    assert PROFILES[p.name] is p
    assert v in VERSIONS


@given(st.lists(st.booleans(), min_size=1, max_size=12), st.integers(0, 11))
def test_pick_takes_the_option_when_allowed_else_spreads_over_the_allowed(
    allowed: list[bool], index: int
) -> None:
    options = list(range(len(allowed)))
    index %= len(options)
    if not any(allowed):
        with pytest.raises(ValueError):
            pick(options, index, allowed.__getitem__)
        return
    got = pick(options, index, allowed.__getitem__)
    assert allowed[got]
    if allowed[index]:
        assert got == index
    reached = {pick(options, i, allowed.__getitem__) for i in options}
    assert reached == {o for o in options if allowed[o]}


def _walk(data: st.DataObject, profile: str) -> System:
    """A system after a few enabled actions drawn by Hypothesis."""
    s = System(PROFILES[profile], data.draw(geometries(), label="geometry"))
    for _ in range(data.draw(st.integers(0, 30), label="length")):
        s.apply(data.draw(st.sampled_from(s.enabled()), label="action"))
    return s


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.11"])
@given(data=st.data())
def test_arguments_are_enabled_and_reach_every_enabled_argument(
    profile: str, data: st.DataObject
) -> None:
    s = _walk(data, profile)
    for name, op in OPS.items():
        enabled = op.args(s)
        if not op.available(s.profile) or not enabled:
            continue
        assert data.draw(arguments(name, s), label=name) in enabled
        reached = {choose_arguments(name, s, i) for i in range(len(options(name, s)))}
        assert reached == set(enabled)


@pytest.mark.parametrize("profile", ["v5.10", "v5.11"])
@given(data=st.data())
def test_a_choice_names_an_enabled_action_and_every_enabled_one_is_reachable(
    profile: str, data: st.DataObject
) -> None:
    s = _walk(data, profile)
    n = len(s.cpus)
    slow = data.draw(st.none() | st.integers(0, n - 1), label="slow")
    enabled = enabled_kinds(s)
    sched = schedule(n, slow)
    reached = {pick_choice(i, enabled, n, sched) for i in range(len(CHOICES))}
    assert reached == {(k, c) for k, cpus in enabled.items() for c in cpus}
    assert set(enabled) <= set(WEIGHTS)
    off = frozenset(data.draw(st.sets(st.sampled_from(SWARM)), label="off"))
    kept = {k: cpus for k, cpus in enabled.items() if k not in off} or enabled
    for i in range(len(CHOICES)):
        assert choose(i, s, sched, off=off) == pick_choice(i, kept, n, sched)


def test_a_slow_cpu_gets_one_scheduling_slot() -> None:
    assert schedule(2, None) == (0, 1, 0, 1, 0, 1, 0, 1)
    assert schedule(2, 0) == (0, 1, 1, 1, 1, 1, 1, 1)
    assert schedule(4, 2).count(2) == 1


@given(stable_choice(("a", "b", "c"), lambda o: o != "b"))
def test_stable_choice_draws_only_allowed_options(option: str) -> None:
    assert option in ("a", "c")
