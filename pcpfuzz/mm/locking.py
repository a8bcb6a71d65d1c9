"""Sleeping locks (``mutex_lock``/``mutex_unlock``), spinlocks held across steps, and waits, as
generators that yield while blocked (spec §14.1; modern-kernels §7)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.state import Mutex, MutexWait, SpinLock, SpinWait, Task, TaskGen, Wait

if TYPE_CHECKING:
    from pcpfuzz.system import System


def mutex_lock(s: System, t: Task, m: Mutex) -> TaskGen:
    """``mutex_lock``: sleep until ``m`` is free, then take it. Taking a lock the task already
    holds is a self-deadlock, reported as LOCK-ORDER."""
    if m.owner == t.tid:
        s.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} takes {m.name}, which it already holds")
    while m.owner is not None:
        yield MutexWait(m)
    m.owner = t.tid
    return None


def mutex_unlock(s: System, t: Task, m: Mutex) -> None:
    """``mutex_unlock``."""
    if m.owner != t.tid:
        s.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} releases {m.name}, held by task {m.owner}")
    m.owner = None


def wait_until(s: System, w: Wait) -> TaskGen:
    """Sleep until ``w`` is ready."""
    while not w.ready(s):
        yield w
    return None


def spin_lock(
    s: System, t: Task, lock: SpinLock, *, irqs_off: bool = False, preempt_only: bool = False
) -> TaskGen:
    """``spin_lock`` (``spin_lock_irqsave`` with ``irqs_off``; with ``preempt_only`` too, a
    plain ``spin_lock`` spinning with preemption off and IRQs on): spin until ``lock`` is free,
    then take it. The holder may yield; a task that takes the same lock waits for it, a
    lockless reader does not. Taking a lock the task already holds is a self-deadlock
    (LOCK-ORDER)."""
    if lock.owner == t.tid:
        s.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} takes {lock.name}, which it already holds")
    while lock.owner is not None:
        yield SpinWait(lock, irqs_off, preempt_only)
    lock.owner = t.tid
    return None


def spin_trylock(t: Task, lock: SpinLock) -> bool:
    """``spin_trylock``: take ``lock`` if it is free; never waits."""
    if lock.owner is not None:
        return False
    lock.owner = t.tid
    return True


def spin_unlock(s: System, t: Task, lock: SpinLock) -> None:
    """``spin_unlock``."""
    if lock.owner != t.tid:
        s.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} releases {lock.name}, held by task {lock.owner}")
    lock.owner = None
