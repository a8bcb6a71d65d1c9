"""Quiescence waits: ``mem_hotplug_begin``'s grace period (issue 11)."""

from __future__ import annotations

import pytest

from pcpfuzz.actions import RunWork, Start, Step
from pcpfuzz.geometry import Geometry
from pcpfuzz.mm.rcu import GP_EXIT, GP_PASSED, GP_REPLAY
from pcpfuzz.profiles import get_profile
from pcpfuzz.state import IpiWait, Task
from pcpfuzz.system import System

GEO = Geometry(nr_blocks=2, online_blocks=2, fraction=0, sizing_scale=1024)


def _irq_off_alloc(s: System) -> None:
    s.apply(Start(1, "alloc_pages", (0, 1)))
    t = s.cpus[1].task
    assert t is not None and t.irq_off


def test_mem_hotplug_begin_waits_for_an_irq_off_cpu() -> None:
    s = System(get_profile("v5.11"), GEO)
    _irq_off_alloc(s)
    s.apply(Start(0, "offline_pages", (1,)))
    offline = s.cpus[0].task
    assert offline is not None and offline.wait is not None
    assert offline.wait.describe() == "synchronize_rcu(), CPU1 IRQ-off"
    assert Step(0) not in s.enabled()
    while s.cpus[1].task is not None and s.cpus[1].task.irq_off:
        s.apply(Step(1))
    assert offline.runnable(s)
    s.apply(Step(0))
    assert s.mem_hotplug_rss.gp_state == GP_PASSED


def _past_the_last_wait(s: System) -> None:
    """Step CPU0's offline into its migrate loop: past MEM_GOING_OFFLINE's ``flush_all``."""
    t = s.cpus[0].task
    while t is not None and not t.loop_iterations:
        s.apply(Step(0))


def _drive(s: System, cpu: int) -> None:
    while s.cpus[cpu].task is not None:
        s.apply(Step(cpu))


def test_rcu_sync_enter_skips_the_grace_period_after_a_recent_exit() -> None:
    """kernel/rcu/sync.c: rcu_sync_enter in GP_EXIT waits for nothing; the exit's callback,
    still waiting for the IRQ-off CPU, then needs one more grace period (GP_REPLAY)."""
    s = System(get_profile("v5.10"), GEO)
    s.apply(Start(0, "offline_pages", (1,)))
    assert s.mem_hotplug_rss.gp_state == GP_PASSED
    _past_the_last_wait(s)
    _irq_off_alloc(s)
    _drive(s, 0)
    assert s.mem_hotplug_rss.gp_state == GP_EXIT
    s.apply(Start(0, "online_pages", (1,)))
    assert s.cpus[0].task is not None and s.cpus[0].task.wait is None
    _drive(s, 0)
    assert s.mem_hotplug_rss.gp_state == GP_REPLAY
    _drive(s, 1)
    s.apply(Start(0, "offline_pages", (1,)))
    assert s.cpus[0].task is not None and s.cpus[0].task.wait is None
    assert (s.mem_hotplug_rss.gp_state, s.grace_periods) == (GP_PASSED, [])


def _offline_steps(s: System, k: int) -> Task:
    """Start offline of block 1 on CPU0 and advance it ``k`` steps (running the drain work it
    waits for)."""
    s.apply(Start(0, "offline_pages", (1,)))
    t = s.cpus[0].task
    assert t is not None
    for _ in range(k):
        s.apply(Step(0) if t.runnable(s) else RunWork(s.runnable_work()[0]))
    return t


@pytest.mark.parametrize("profile", ["v5.9-nofix", "v5.10", "v5.10+p6", "v5.10+p7", "v5.11"])
def test_mem_going_offline_flush_all_waits_for_an_irq_off_cpu(profile: str) -> None:
    """5.10 MH 1572 / 5.11 MH 1521: MEM_GOING_OFFLINE's SLUB ``flush_all`` IPIs every CPU with
    wait=1 (5.10 mm/slub.c 2464): the offline sleeps until CPU1 leaves its IRQ-off step. The
    step that ends the isolation is the one that waits."""
    k = 0
    while True:
        s = System(get_profile(profile), GEO, tracing=True)
        offline = _offline_steps(s, k)
        _irq_off_alloc(s)
        if offline.runnable(s):
            s.apply(Step(0))
        if isinstance(offline.wait, IpiWait):
            break
        assert not offline.loop_iterations, "the offline reached its migrate loop without an IPI"
        k += 1
    assert s.iso_users and not offline.loop_iterations
    assert offline.wait.describe() == "on_each_cpu_cond(flush_cpu_slab, wait=1), CPU1 IRQ-off"
    assert s.why_not(Step(0)) == (
        "CPU0's offline_pages is blocked in on_each_cpu_cond(flush_cpu_slab, wait=1), CPU1 IRQ-off"
    )
    assert s.log[-1][1:] == (
        0,
        "on_each_cpu_cond(flush_cpu_slab, wait=1): waits for CPU1 (IRQ-off)",
    )
    _drive(s, 1)
    assert Step(0) in s.enabled()
    s.apply(Step(0))
    s.apply(Step(0))
    assert offline.wait is None and offline.loop_iterations == 1
