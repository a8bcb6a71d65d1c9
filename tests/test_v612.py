"""The v6.12 profile (modern-kernels.md (e)). Sizing values are hand-computed from 6.12.0's
``zone_batchsize``, ``zone_highsize``, ``zone_set_pageset_high_and_batch`` and
``__setup_per_zone_wmarks`` (mm/page_alloc.c)."""

from pathlib import Path

import pytest
from helpers import kernel_task
from test_v61 import UAF_MESSAGES, flush_work_wait, zone_reset_uaf

from pcpfuzz.actions import CpuDown, Run, Signal, Start, Step
from pcpfuzz.constants import MT
from pcpfuzz.corpus import load_entry
from pcpfuzz.invariants import check
from pcpfuzz.invariants612 import check_fl_type_strict
from pcpfuzz.kernels import V6_12 as V6_12_KERNEL
from pcpfuzz.kernels import kernel_for
from pcpfuzz.ladder import geometry_for
from pcpfuzz.mm import contig as contig5
from pcpfuzz.mm612.buddy import move_freepages_block_isolate
from pcpfuzz.mm612.sizing import clamp, pcp_high_min_max_batch, zone_batchsize, zone_watermarks
from pcpfuzz.profiles import get_profile
from pcpfuzz.system import System
from pcpfuzz.trace import execute
from pcpfuzz.violation import Violation


def test_zone_batchsize_at_kernel_scale() -> None:
    # min(managed >> 10, 256) / 4, then rounddown_pow_of_two(b + b/2) - 1, as 6.12 computes it
    assert zone_batchsize(4096) == 0  # 4 / 4 = 1 -> rdp2(1) - 1
    assert zone_batchsize(8192) == 1  # 8 / 4 = 2 -> rdp2(3) - 1
    assert zone_batchsize(176128) == 63  # 172 / 4 = 43 -> rdp2(64) - 1
    assert zone_batchsize(1_000_000) == 63  # min(976, 256) / 4 = 64 -> rdp2(96) - 1


def test_watermarks_of_the_only_lowmem_zone() -> None:
    # min = pages_min; delta = max(min >> 2, managed * 10 / 10000); low = min + delta
    assert zone_watermarks(64, 8, 64) == (8, 10, 12)
    assert zone_watermarks(1_000_000, 16384, 1_000_000) == (16384, 20480, 24576)
    assert zone_watermarks(4_000_000, 1000, 4_000_000) == (1000, 5000, 9000)  # scale term wins


def test_high_min_max_batch_at_kernel_scale() -> None:
    # batch 63; high_min = max(20480 / 4, 63 << 2); high_max = max(1e6 / 8 / 4, 252)
    assert pcp_high_min_max_batch(1_000_000, 20480, 4, 0) == (5120, 31250, 63)
    # fraction mode: high_min = high_max = max(1e6 / 100 / 4, 252)
    assert pcp_high_min_max_batch(1_000_000, 20480, 4, 100) == (2500, 2500, 63)
    # the CPU-online callback counts the coming CPU: 5 CPUs
    assert pcp_high_min_max_batch(1_000_000, 20480, 5, 0) == (4096, 25000, 63)


def test_high_min_max_batch_at_model_scale() -> None:
    # the spec's §5.6 table: batch 1 below 8192 pages, floor batch << 2 = 4
    assert pcp_high_min_max_batch(64, 2, 2, 0) == (4, 4, 1)
    assert pcp_high_min_max_batch(64, 10, 2, 0) == (5, 4, 1)  # high_min > high_max
    assert pcp_high_min_max_batch(256, 10, 2, 0) == (5, 16, 1)
    assert pcp_high_min_max_batch(256, 10, 2, 8) == (16, 16, 1)
    with pytest.raises(ValueError, match="nr_cpus"):
        pcp_high_min_max_batch(256, 10, 0, 0)


def test_clamp_is_the_6_12_form() -> None:
    assert clamp(3, 1, 5) == 3 and clamp(0, 1, 5) == 1 and clamp(9, 1, 5) == 5
    # lo > hi: hi when val >= hi, else lo (6.1's min(max()) would give hi)
    assert clamp(5, 5, 4) == 4 and clamp(3, 5, 4) == 5


# ---- the v6.12 profile ------------------------------------------------------------------------

V612 = get_profile("v6.12")
GEO = geometry_for("v6.12")


def _system() -> System:
    return System(V612, GEO)


def _run(s: System, cpu: int) -> None:
    while s.cpus[cpu].task is not None:
        s.apply(Step(cpu))


def _alloc(s: System, order: int, mt: int = MT.MOVABLE) -> int:
    before = set(s.pool())
    s.apply(Start(0, "alloc_pages", (order, int(mt))))
    _run(s, 0)
    (pfn,) = set(s.pool()) - before
    return pfn


def _free_blocks(s: System) -> list[tuple[int, int, str]]:
    return sorted(
        (head, order, MT(mt).name)
        for order, lists in enumerate(s.zone.free_list)
        for mt, fl in enumerate(lists)
        for head in fl
    )


def test_boot_triple_from_the_low_watermark_and_managed_over_8() -> None:
    s = _system()
    assert s.zone.watermark == zone_watermarks(128, 4, 128) == (4, 5, 6)
    # high_min = max(5 / 2, 1 << 2), high_max = max(128 / 8 / 2, 4), batch max(1, 0)
    assert s.zone612.triple() == (4, 8, 1)
    assert [(p.high, p.high_min, p.high_max, p.batch) for p in s.pcp] == [(0, 4, 8, 1)] * 2
    assert check(s, full=True) == []
    assert kernel_for(V612) is V6_12_KERNEL and V612.freelist_hygiene and V612.pcp_spinlock


def test_nr_pcp_alloc_grows_high_and_alloc_factor_as_6_12_computes() -> None:
    s = _system()
    _alloc(s, 0)
    # clamp(0, 4, 8) = 4; refill base << 0 = 1, high = min(4 + 1, 8); alloc_factor 1
    assert (s.pcp[0].high, s.pcp[0].alloc_factor, s.pcp[0].count) == (5, 1, 0)
    _alloc(s, 0)
    # refill 1 << 1 = 2 (room max(7 - 0 - 1, 1) = 6), high = min(5 + 2, 8); one left
    assert (s.pcp[0].high, s.pcp[0].alloc_factor, s.pcp[0].count) == (7, 2, 1)


def test_a_free_halves_alloc_factor_and_counts_free_count() -> None:
    s = _system()
    pfns = [_alloc(s, 0) for _ in range(3)]
    for pfn in pfns:
        s.apply(Start(0, "free_pages", (pfn,)))
        _run(s, 0)
    pcp = s.pcp[0]
    assert pcp.alloc_factor == 0 and pcp.free_count == 3
    assert pcp.high_min <= pcp.high <= pcp.high_max and pcp.count < pcp.high
    assert check(s, full=True) == []


def test_decay_pcp_high_lowers_high_by_an_eighth_as_vmstat_work() -> None:
    s = _system()
    pcp = s.pcp[1]
    pcp.high = 8
    s.apply(Start(1, "vmstat_update", ()))
    _run(s, 1)
    assert pcp.high == 7  # max3(0 - (1 << 5), 8 - 8 / 8, 4)
    assert s.returned[1] == ("vmstat_update", 1)  # more work: high is still above high_min


def test_merge_retypes_the_buddys_pageblock_and_split_large_buddy_refrees_per_pageblock() -> None:
    s = _system()
    # Boot: order-5 buddies of two pageblocks each. Re-type pageblock 1 (the tail of the
    # buddy at pfn 0) to UNMOVABLE the way isolation does: the buddy is split per pageblock,
    # pageblock 1's half is freed as UNMOVABLE and merges with pageblock 0's MOVABLE half,
    # retyping pageblock 0 to UNMOVABLE (both are mergeable types).
    assert move_freepages_block_isolate(s, 16, MT.UNMOVABLE)
    assert s.pageblock_mt[:2] == [MT.UNMOVABLE, MT.UNMOVABLE]
    assert (0, 5, "UNMOVABLE") in _free_blocks(s)
    assert s.events["merge retyped the buddy's pageblock"] == 1
    assert check_fl_type_strict(s) == [] and check(s, full=True) == []


def test_isolating_a_tail_pageblock_splits_the_large_buddy() -> None:
    s = _system()
    free = s.zone.nr_free_pages
    assert move_freepages_block_isolate(s, 16, MT.ISOLATE)
    assert _free_blocks(s)[:2] == [(0, 4, "MOVABLE"), (16, 4, "ISOLATE")]
    assert s.zone.nr_free_pages == free - 16  # account_freepages: ISOLATE is not counted
    assert check_fl_type_strict(s) == []


def test_a_freelist_operation_with_the_wrong_type_warns_as_the_kernel_does() -> None:
    s = _system()
    s.pageblock_mt[s.pb(96)] = MT.UNMOVABLE  # a retype without moving the free pages
    _alloc(s, 0)
    (v, *_) = [v for v in check(s, full=True) if v.invariant == "TYPE-WARN"]
    assert "page type is 0, passed migratetype is 1 (nr=32)" in v.message
    assert any(v.invariant == "FL-TYPE-STRICT" for v in check(s, full=True))


def test_free_unref_folios_drops_the_pcp_lock_for_an_isolated_page_mid_batch() -> None:
    s = _system()
    for _ in range(20):
        _alloc(s, 0)
    pool = s.pool()
    a, b = next((x, y) for x, y in zip(pool, pool[1:], strict=False) if s.pb(x) != s.pb(y))
    assert move_freepages_block_isolate(s, b, MT.ISOLATE)
    s.zone.nr_isolate_pageblock += 1
    start = b & ~(s.geo.pageblock_nr_pages - 1)
    s.isolation_begin(kernel_task(1), start, start + s.geo.pageblock_nr_pages, "test")
    s.apply(Start(0, "free_unref_page_list", (a, b)))
    _run(s, 0)
    assert a in s.pcp[0].lists[MT.MOVABLE] and s.where(b).endswith("on the ISOLATE list")
    assert s.pcp[0].lock.owner is None
    assert s.events["page freed straight to the buddy: ISOLATE"] == 1
    assert check(s, full=True) == []


def test_drain_pages_zone_frees_in_chunks_of_batch_shifted_by_scale_max() -> None:
    s = _system()
    thps = [_alloc(s, 4) for _ in range(3)]  # 48 pages > 1 << 5
    pcp = s.pcp[0]
    for pfn in thps:
        s.release(pfn)
        s.inflight.pop(pfn)
        pcp.lists[pcp.pindex(MT.MOVABLE, 4)].append(pfn)
        s.cached_mt[pfn] = MT.MOVABLE
        pcp.count += 16
    s.apply(Start(1, "drain_all_pages", (1,)))
    _run(s, 1)
    assert pcp.count == 0 and s.events["drain_pages_zone drained in more than one chunk"] == 1
    assert check(s, full=True) == []


def test_zone_pcp_disable_writes_0_0_1_and_the_owner_clamps_high_to_0() -> None:
    s = _system()
    pfn = _alloc(s, 0)
    s.apply(Start(1, "get_hwpoison_page", ()))
    for _ in range(40):
        if s.pcp_disabled:
            break
        s.apply(Step(1))
    assert s.pcp_disabled and [(p.high_min, p.high_max, p.batch) for p in s.pcp] == [(0, 0, 1)] * 2
    s.apply(Start(0, "free_pages", (pfn,)))
    _run(s, 0)
    assert s.pcp[0].high == 0 and s.pcp[0].count == 0  # pushed, then flushed at once
    _run(s, 1)
    assert not s.pcp_disabled and check(s, full=True) == []


def _replay(entry: str) -> Violation | None:
    e = load_entry(Path(__file__).resolve().parent.parent / "corpus" / entry)
    return execute(V612, e.geometry, e.actions).violation


def test_the_emptied_zone_cache_finding_of_v6_1_is_still_in_v6_12() -> None:
    v = _replay("v6.1/PCP-HB-fbd9f2c7a9.json")
    assert v is not None and v.invariant == "PCP-HB" and "0/0/1" in v.message
    v = _replay("v6.12/PCP-HB-100e28f972.json")
    assert v is not None and v.invariant == "PCP-HB"


@pytest.mark.parametrize(
    "entry", ["DRAIN-LOCKED-1a65508b28", "DRAIN-LOCKED-19b2b359a2", "DRAIN-LOCKED-ca4db6c76c"]
)
def test_v6_1s_unlocked_count_read_findings_pass_on_v6_12(entry: str) -> None:
    assert _replay(f"v6.1/{entry}.json") is None


def test_an_allocation_inside_its_pcp_section_across_zone_pcp_reset_uses_the_freed_pageset() -> (
    None
):
    """docs/v6.12.md, "PCP-UAF": as v6.1's; CPU1 is preemption-off (IRQs on) from
    ``pcp_spin_trylock`` (6.12 PA 3030) and nothing from ``zone_pcp_enable`` to
    ``zone_pcp_reset`` (6.12 MH 2073-2088) waits for it."""
    s, messages = zone_reset_uaf("v6.12")
    assert messages == UAF_MESSAGES
    assert s.zone.pageset_is_boot and not any(pcp.freed for pcp in s.pcp)


def test_mem_going_offline_waits_for_a_cpu_inside_its_preemption_off_pcp_section() -> None:
    """6.12 MH 2006: ``flush_all_cpus_locked`` (6.12 mm/slub.c 3312) waits for CPU1's kworker,
    which cannot run inside ``pcp_spin_trylock``'s preemption-off section."""
    s, wait = flush_work_wait("v6.12")
    assert wait == "flush_work(flush_cpu_slab), CPU1 not preemptible"
    s.apply(Run(1))
    assert s.cpus[0].task is not None and s.cpus[0].task.runnable(s)


def test_pcp_hb_waits_for_a_cpu_hotplug_tasks_zone_pcp_update() -> None:
    # A CPU going down changes the divisor of high_min/high_max only at its zone_pcp_update;
    # until then the pagesets lag the zone as they do under memory hotplug (found as a 2-action
    # PCP-HB when CPU hotplug became a task on v6.12 too).
    s = _system()
    s.apply(CpuDown(1))
    s.apply(Step(1))
    assert check(s, full=True) == []
    _run(s, 1)
    assert not s.cpus[1].online
    assert {(p.high_min, p.high_max, p.batch) for p in s.pcp} == {s.mm.zone_high_batch(s)}
    assert check(s, full=True) == []


def test_a_neighbours_contig_frees_the_tail_of_the_merged_buddy_it_took() -> None:
    # Pageblocks 0 and 1 both ISOLATE merge into one order-5 buddy (6.12 __free_one_page merges
    # equal types). CPU1's alloc_contig_range of [0, 16) takes it whole and must free [16, 32)
    # back (alloc_contig_range's "Free head and tail"); the model kept the tail, and CPU0's
    # contig of [16, 32) then took pfn 16 as a free block and crashed (found by walk_rate).
    s = _system()
    for a in (
        Start(1, "alloc_pages", (3, 1)),
        Start(0, "alloc_contig_range", (16,)),
        Run(1),
        Start(1, "offline_pages", (0,)),
        Signal(1),
        Step(1),
        Run(1),
        Start(1, "alloc_contig_range", (96,)),
        Step(1),
        Step(1),
        Run(1),
        Start(1, "alloc_contig_range", (0,)),
        Run(0),
        Run(1),
    ):
        s.apply(a)
        assert check(s, full=True) == []
    _run(s, 0)
    assert s.returned[0][1] == 0
    assert s.events["alloc_contig_range succeeded"] == 3
    assert check(s, full=True) == []


def test_isolate_freepages_range_is_strict() -> None:
    # isolate_freepages_block(..., strict=true): a page of the range no longer free makes the
    # whole range fail (0, then -EBUSY), with nothing taken.
    s = _system()
    pfn = _alloc(s, 0)
    start = pfn & ~(s.geo.pageblock_nr_pages - 1)
    free_before = s.zone.nr_free_pages
    assert contig5.isolate_freepages_range(s, kernel_task(0), start, start + 16) == 0
    assert s.zone.nr_free_pages == free_before
    assert check(s, full=True) == []


ISO_NO_ALLOC_ENTRY = Path(__file__).parent.parent / "corpus/v6.12/ISO-NO-ALLOC-e3d7344517.json"


@pytest.mark.parametrize(("profile", "drain_steps"), [("v6.12", 8), ("v6.1", 0)])
def test_an_allocation_straddling_an_offline_isolation_returns_an_isolated_page(
    profile: str, drain_steps: int
) -> None:
    """The corpus entry without its interrupt: a task's order-1 allocation on CPU0 refills one
    page (pcplists disabled: batch 1) under zone->lock and drops it; CPU1's offline isolates
    that page's pageblock (has_unmovable_pages skips a refcount-0 page on a pcplist) and waits
    in flush_work for CPU0; CPU0 pops the page and returns it (docs/v6.12.md)."""
    entry = load_entry(ISO_NO_ALLOC_ENTRY)
    s = System(get_profile(profile), entry.geometry)
    prefix = list(entry.actions[:8])
    tail = [Start(0, "alloc_pages", (1, int(MT.UNMOVABLE))), Step(0), Run(1), Run(0)]
    for action in (*prefix, *[Step(1)] * drain_steps, *tail):
        s.apply(action)
    found = [v.message for v in check(s, full=True) if v.invariant == "ISO-NO-ALLOC"]
    assert found and "isolated pageblock 2 while offline holds pfn 32-63" in found[0]
