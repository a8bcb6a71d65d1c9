"""Quiescence waits: ``mem_hotplug_begin``'s grace period (issue 11)."""

from __future__ import annotations

from pcpfuzz.actions import Start, Step
from pcpfuzz.geometry import Geometry
from pcpfuzz.mm.rcu import GP_EXIT, GP_PASSED, GP_REPLAY
from pcpfuzz.profiles import get_profile
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
