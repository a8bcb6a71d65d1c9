"""Interrupts (``Interrupt``): a hardirq or the vmstat kworker nested over a busy CPU's task
(modern-kernels §1.3, §7.1, §7.2 items 2, 4, 11). On v6.12 a pcp section has IRQs on, so a
hardirq's trylock fails against its own CPU's owner section and it takes the fallback; on v6.1
the section has IRQs off, so the interrupt comes only between sections."""

from __future__ import annotations

import random

import pytest

from pcpfuzz.actions import Interrupt, Run, RunWork, Start, Step
from pcpfuzz.constants import MT
from pcpfuzz.corpus import FoundBy, MalformedEntry, dumps, make_entry, parse_entry
from pcpfuzz.engines.choice import Chooser, draw_swarm, full_swarm, profile_kinds
from pcpfuzz.invariants import check
from pcpfuzz.ladder import geometry_for
from pcpfuzz.liveness import finish
from pcpfuzz.profiles import get_profile
from pcpfuzz.state import MutexWait, SpinWait, Task, TaskGen
from pcpfuzz.system import NotEnabled, System
from pcpfuzz.trace import execute


def _system(profile: str) -> System:
    return System(get_profile(profile), geometry_for(profile), tracing=True)


def _run(s: System, cpu: int) -> None:
    while s.cpus[cpu].running() is not None:
        s.apply(Step(cpu))


def _two_pool_pages(s: System) -> tuple[int, int]:
    """Two order-0 MOVABLE blocks in the pool, allocated on CPU1."""
    for _ in range(2):
        s.apply(Start(1, "alloc_pages", (0, int(MT.MOVABLE))))
        _run(s, 1)
    a, b = s.pool()[:2]
    return a, b


def _in_owner_section(s: System, cpu: int, pfn: int) -> Task:
    """Start ``free_pages(pfn)`` on ``cpu`` and step it into its owner pcp section (its
    ``pcp->lock`` held by trylock, the page pushed); returns the task."""
    s.apply(Start(cpu, "free_pages", (pfn,)))
    t = s.cpus[cpu].task
    assert t is not None and s.pcp[cpu].lock.owner is None  # the lockless mt read only
    s.apply(Step(cpu))
    assert s.pcp[cpu].lock.owner == t.tid and t.irq_off
    return t


def test_v612_irq_free_inside_the_owner_section_falls_back_to_the_buddy() -> None:
    s = _system("v6.12")
    a, b = _two_pool_pages(s)
    t = _in_owner_section(s, 0, a)
    assert t.preempt_only  # preemption off, IRQs on (pcp_spin_trylock: pcpu_task_pin)
    irq = Interrupt(0, "free_pages", (b,))
    assert irq in s.enabled() and str(irq) == f"CPU0 <IRQ> free_pages(pfn {b})"
    free_before = s.zone.nr_free_pages
    s.apply(irq)
    nested = s.cpus[0].nested
    assert nested is not None and nested.context == "irq" and s.cpus[0].running() is nested
    assert Start(0, "drain_local_pages", ()) not in s.enabled()
    while s.cpus[0].nested is not None:
        s.apply(Step(0))  # CPU0 steps the IRQ, not the task it interrupted
        assert s.pcp[0].lock.owner == t.tid and check(s, full=True) == []
    assert s.events["free: pcp trylock failed, freed to the buddy"] == 1
    assert s.events["IRQ free: trylock failed inside its CPU's own pcp section"] == 1
    assert s.where(b).startswith("in a free order-") and s.zone.nr_free_pages > free_before
    assert s.cpus[0].task is t and b not in s.pcp[0].lists[s.pcp[0].pindex(MT.MOVABLE, 0)]
    _run(s, 0)
    assert a in s.pcp[0].lists[s.pcp[0].pindex(MT.MOVABLE, 0)]
    assert any(text == f"<IRQ> free_pages(pfn {b})" for _i, cpu, text in s.log if cpu == 0)
    assert finish(s) == [] and check(s, full=True) == []


def test_v612_irq_allocation_inside_the_owner_section_takes_rmqueue_buddy() -> None:
    s = _system("v6.12")
    a, _b = _two_pool_pages(s)
    _in_owner_section(s, 0, a)
    s.apply(Interrupt(0, "alloc_pages", (0, int(MT.UNMOVABLE))))
    _run(s, 0)
    assert s.events["allocation: pcp trylock failed"] == 1
    assert s.events["IRQ allocation: trylock failed inside its CPU's own pcp section"] == 1
    assert Interrupt(0, "alloc_pages", (0, int(MT.MOVABLE))) not in s.enabled()  # GFP_ATOMIC
    assert Interrupt(0, "alloc_pages", (4, int(MT.UNMOVABLE))) not in s.enabled()  # costly
    assert finish(s) == [] and check(s, full=True) == []


def test_v61_irq_is_not_enabled_inside_the_irq_off_section_only_between() -> None:
    s = _system("v6.1")
    a, b = _two_pool_pages(s)
    s.apply(Start(0, "free_pages", (a,)))
    irq = Interrupt(0, "free_pages", (b,))
    assert irq in s.enabled()  # between the lockless mt read and the trylock: IRQs on
    s.apply(Step(0))
    t = s.cpus[0].task
    assert t is not None and s.pcp[0].lock.owner == t.tid and not t.preempt_only
    assert irq not in s.enabled()  # pcp_spin_trylock_irqsave: IRQs off in the section
    with pytest.raises(NotEnabled, match="cannot be interrupted"):
        s.apply(irq)
    # a new same-CPU interleaving: the IRQ's free commits between the task's read and trylock
    s = _system("v6.1")
    a, b = _two_pool_pages(s)
    s.apply(Start(0, "free_pages", (a,)))
    s.apply(irq)
    _run(s, 0)
    lst = s.pcp[0].lists[s.pcp[0].pindex(MT.MOVABLE, 0)]
    assert lst[:2] == [a, b] and "free: pcp trylock failed, freed to the buddy" not in s.events
    assert finish(s) == [] and check(s, full=True) == []


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.10", "v5.11"])
def test_5x_profiles_have_no_interrupts(profile: str) -> None:
    s = System(get_profile(profile), geometry_for(profile))
    a, _b = _two_pool_pages(s)
    s.apply(Start(0, "free_pages", (a,)))
    assert s.nested_ops(0) == [] and "irq" not in profile_kinds(s.profile)
    assert not any(isinstance(x, Interrupt) for x in s.enabled())


def _sleeps(s: System, t: Task) -> TaskGen:
    yield MutexWait(s.pcp_batch_high_lock)
    return None


def _spins_on_zone_lock(s: System, t: Task) -> TaskGen:
    yield SpinWait(s.zone_lock, True)
    return None


def _preemptible_task(profile: str = "v6.12") -> tuple[System, Task]:
    """A system whose CPU0 task (a free) is between steps with IRQs on and preemption on."""
    s = _system(profile)
    a, _b = _two_pool_pages(s)
    s.apply(Start(0, "free_pages", (a,)))
    t = s.cpus[0].task
    assert t is not None and not t.irq_off
    return s, t


def test_an_irq_never_sleeps_and_never_spins_on_its_own_task_s_lock() -> None:
    s, _base = _preemptible_task()
    s.pcp_batch_high_lock.owner = 999
    s._start(0, "free_pages", (), lambda t: _sleeps(s, t), "irq")
    assert [v.invariant for v in s.bugs] == ["LOCK-ORDER"]
    assert "<IRQ> free_pages sleeps in mutex_lock(pcp_batch_high_lock) in IRQ context" in (
        s.bugs[0].message
    )
    assert s.cpus[0].nested.hung and Step(0) not in s.enabled() and check(s)
    s, base = _preemptible_task()
    s.zone_lock.owner = base.tid  # as if the task had yielded preemptible holding zone->lock
    s._start(0, "alloc_pages", (), lambda t: _spins_on_zone_lock(s, t), "irq")
    assert "spins on zone->lock, held by the free_pages it interrupted: deadlock" in (
        s.bugs[0].message
    )
    assert s.cpus[0].nested.hung


def test_an_irq_spinning_on_a_remote_lock_waits_and_holds_its_cpu() -> None:
    s = _system("v6.12")
    a, _b = _two_pool_pages(s)
    s.apply(Start(0, "free_pages", (a,)))
    s.zone_lock.owner = 999  # another CPU holds zone->lock across steps
    s.apply(Interrupt(0, "alloc_pages", (3, int(MT.UNMOVABLE))))
    s.apply(Step(0))  # the pcp list is empty: rmqueue_bulk spins on zone->lock
    nested = s.cpus[0].nested
    assert nested is not None and isinstance(nested.wait, SpinWait) and not s.bugs
    assert Step(0) not in s.enabled() and Run(0) not in s.enabled()
    s.zone_lock.owner = None
    _run(s, 0)
    assert s.cpus[0].task is None and not s.bugs


def test_v612_vmstat_kworker_preempts_only_a_preemptible_task() -> None:
    s = _system("v6.12")
    a, _b = _two_pool_pages(s)
    s.apply(Start(0, "free_pages", (a,)))
    kworker = Interrupt(0, "vmstat_update", ())
    assert kworker in s.enabled() and str(kworker).startswith("CPU0 <kworker> vmstat_update()")
    s.apply(Step(0))  # into the owner section: preemption off
    assert kworker not in s.enabled() and Interrupt(0, "free_pages", (_b,)) in s.enabled()
    _run(s, 0)
    s.apply(Start(0, "free_pages", (_b,)))
    s.cpus[0].work_pending = True
    s.apply(kworker)
    if s.cpus[0].nested is not None:
        assert RunWork(0) not in s.enabled()  # the drain work waits for the kworker
    _run(s, 0)
    s.cpus[0].work_pending = False
    assert finish(s) == [] and check(s, full=True) == []
    assert Interrupt(0, "vmstat_update", ()) not in s.enabled()  # idle CPU: a Start


def test_an_interrupt_round_trips_through_the_corpus_format() -> None:
    s = _system("v6.12")
    a, b = _two_pool_pages(s)
    actions = (
        Start(1, "alloc_pages", (0, int(MT.MOVABLE))),
        Run(1),
        Start(1, "alloc_pages", (0, int(MT.MOVABLE))),
        Run(1),
        Start(0, "free_pages", (a,)),
        Step(0),
        Interrupt(0, "free_pages", (b,)),
        Run(0),
    )
    entry = make_entry(get_profile("v6.12"), geometry_for("v6.12"), actions, FoundBy("random"))
    assert entry.expect is None and parse_entry(dumps(entry)) == entry
    assert f"CPU0 <IRQ> free_pages(pfn {b})" in "\n".join(entry.trace)
    bad = dumps(entry).replace('"irq", "op": "free_pages"', '"irq", "op": "offline_pages"')
    with pytest.raises(MalformedEntry, match="unknown operation for an interrupt 'offline_pages'"):
        parse_entry(bad)


@pytest.mark.parametrize("profile", ["v6.1", "v6.12"])
def test_chooser_walks_interrupt_and_incremental_equals_full(profile: str) -> None:
    p = get_profile(profile)
    assert "irq" in full_swarm(p).kinds
    interrupts = 0
    for seed in range(6):
        rng = random.Random(seed)
        s = System(p, geometry_for(profile))
        choose = Chooser(rng, draw_swarm(rng, p))
        for _ in range(150):
            action = choose(s)
            if action is None:
                break
            s.apply(action)
            interrupts += isinstance(action, Interrupt)
            full = check(s, full=True)
            assert check(s) == full
            if full:
                break
        else:
            finish(s)
            assert check(s) == check(s, full=True)
    assert interrupts >= 10


def test_v612_a_drainer_spins_on_a_pcp_lock_with_irqs_on_and_an_irq_nests() -> None:
    s = _system("v6.12")
    s.apply(Start(1, "alloc_pages", (0, int(MT.MOVABLE))))
    _run(s, 1)
    s.apply(Start(1, "alloc_pages", (0, int(MT.MOVABLE))))
    _run(s, 1)
    s.apply(Start(1, "alloc_pages", (0, int(MT.MOVABLE))))
    _run(s, 1)
    a, b, c = s.pool()[:3]
    _in_owner_section(s, 0, a)
    s.apply(Start(1, "drain_all_pages", (1,)))
    drainer = s.cpus[1].task
    for _ in range(50):
        if isinstance(drainer.wait, SpinWait):
            break
        s.apply(Step(1))
    assert isinstance(drainer.wait, SpinWait) and drainer.wait.lock is s.pcp[0].lock
    assert drainer.irq_off and drainer.preempt_only  # spin_lock: preemption off, IRQs on
    assert RunWork(1) not in s.enabled() and Interrupt(1, "vmstat_update", ()) not in s.enabled()
    s.apply(Interrupt(1, "free_pages", (b,)))
    while s.cpus[1].nested is not None:  # the IRQ takes CPU1's own lock; the drainer spins
        s.apply(Step(1))
    assert b in s.pcp[1].lists[s.pcp[1].pindex(MT.MOVABLE, 0)] and s.cpus[1].nested is None
    _run(s, 0)
    _run(s, 1)
    assert finish(s) == [] and check(s, full=True) == [] and c in s.pool()


IRQ_SPLIT_RACE = (
    Start(0, "alloc_pages", (5, int(MT.UNMOVABLE))),
    Start(0, "free_pages", (32,)),
    Run(0),
    Start(0, "alloc_contig_range", (48,)),
    Step(0),
    Step(0),
    Interrupt(0, "alloc_pages", (0, int(MT.UNMOVABLE))),
    Run(0),
)
"""v6.1's isolation/split race (docs/v6.1.md, "FL-TYPE and FREECOUNT") on one CPU: an order-5
UNMOVABLE block is freed at pfn 32; CPU0's contig isolates pageblock 3 (zone->lock released,
IRQs on) and, before its ``split_free_page``, a GFP_ATOMIC order-0 allocation in an interrupt
of CPU0 splits the block, and ``expand`` puts pageblock 3 (pfn 48-63) on the UNMOVABLE list."""


def test_v61_an_irq_on_the_contig_s_own_cpu_opens_the_isolation_split_race() -> None:
    p, geo = get_profile("v6.1"), geometry_for("v6.1")
    s = System(p, geo)
    for action in IRQ_SPLIT_RACE[:-1]:
        s.apply(action)
    assert s.cpus[0].nested is not None and s.cpus[0].task.op == "alloc_contig_range"
    while s.cpus[0].nested is not None:
        s.apply(Step(0))
    on_lists = [
        (h, o, m) for o, ls in enumerate(s.zone.free_list) for m, fl in enumerate(ls) for h in fl
    ]
    assert (48, 4, int(MT.UNMOVABLE)) in on_lists and s.pageblock_mt[3] == MT.ISOLATE
    found: list[str] = []
    while not found:  # the contig's scan finds nothing across the boundary; the pass ends
        s.apply(Step(0))
        found = [v.invariant for v in check(s, full=True)]
    assert found == ["FL-TYPE"]
    out = execute(p, geo, IRQ_SPLIT_RACE)  # at rest the contig took the half uncounted
    assert (out.invariant, out.at) == ("FREECOUNT", -1)
    assert out.violation.message == "NR_FREE_PAGES is 63, freelists hold 47"
