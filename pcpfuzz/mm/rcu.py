"""RCU grace periods and ``rcu_sync`` (kernel/rcu/tree.c ``synchronize_rcu``,
kernel/rcu/sync.c), the waits for every CPU that ``percpu_down_write`` makes (issue 11).

An IRQ-off region is an RCU read-side critical section, so a grace period that begins while
another CPU is inside an IRQ-off step cannot end before that CPU's step ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.mm.locking import wait_until
from pcpfuzz.state import GracePeriod, GracePeriodWait, RcuSync, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System

GP_IDLE, GP_ENTER, GP_PASSED, GP_EXIT, GP_REPLAY = range(5)


def start_grace_period(s: System, t: Task | None) -> GracePeriod:
    """A grace period beginning now: it waits for every other CPU now inside an IRQ-off step."""
    me = None if t is None else t.cpu
    cpus = {i for i, c in enumerate(s.cpus) if i != me and c.atomic()}
    gp = GracePeriod(cpus)
    if cpus:
        s.grace_periods.append(gp)
    return gp


def synchronize_rcu(s: System, t: Task) -> TaskGen:
    """``synchronize_rcu``: sleep until every CPU that was IRQ-off when it was called has left
    that IRQ-off step."""
    gp = start_grace_period(s, t)
    if gp.cpus and s.tracing:
        s.klog(
            t.cpu,
            f"synchronize_rcu(): waits for CPU{','.join(map(str, sorted(gp.cpus)))} (IRQ-off)",
        )
    yield from wait_until(s, GracePeriodWait(gp))
    return None


def rcu_sync_func(s: System, rss: RcuSync) -> None:
    """``rcu_sync_func``, the callback run when ``rss.pending`` has passed: a writer inside
    makes it GP_PASSED; GP_REPLAY re-arms it as GP_EXIT; else it goes back to GP_IDLE."""
    rss.pending = None
    if rss.gp_count:
        rss.gp_state = GP_PASSED
    elif rss.gp_state == GP_REPLAY:
        rss.gp_state = GP_EXIT
        rss.pending = start_grace_period(s, None)
    else:
        rss.gp_state = GP_IDLE


def rcu_sync_poll(s: System, rss: RcuSync) -> None:
    """Run ``rcu_sync_func`` if the queued callback's grace period has passed."""
    while rss.pending is not None and not rss.pending.cpus:
        rcu_sync_func(s, rss)


def rcu_sync_enter(s: System, t: Task, rss: RcuSync) -> TaskGen:
    """``rcu_sync_enter``: from GP_IDLE, ``synchronize_rcu``; otherwise wait only for a state
    of GP_PASSED or later (after a recent ``rcu_sync_exit`` that is no wait at all)."""
    rcu_sync_poll(s, rss)
    gp_state = rss.gp_state
    if gp_state == GP_IDLE:
        rss.gp_state = GP_ENTER
    rss.gp_count += 1
    if gp_state == GP_IDLE:
        yield from synchronize_rcu(s, t)
        rcu_sync_func(s, rss)
        return None
    while rss.gp_state < GP_PASSED:
        yield GracePeriodWait(rss.pending) if rss.pending is not None else None
        rcu_sync_poll(s, rss)
    return None


def rcu_sync_exit(s: System, t: Task, rss: RcuSync) -> None:
    """``rcu_sync_exit``: the last writer out queues ``rcu_sync_func`` after a grace period
    (GP_PASSED to GP_EXIT), or asks for one more (GP_EXIT to GP_REPLAY)."""
    rcu_sync_poll(s, rss)
    rss.gp_count -= 1
    if not rss.gp_count:
        if rss.gp_state == GP_PASSED:
            rss.gp_state = GP_EXIT
            rss.pending = start_grace_period(s, t)
        elif rss.gp_state == GP_EXIT:
            rss.gp_state = GP_REPLAY
