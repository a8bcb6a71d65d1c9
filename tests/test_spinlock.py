"""Spinlocks held across steps: a taker waits (with IRQs off for ``spin_lock_irqsave``), a
trylock fails while the lock is held, a task ending with a spinlock held is LOCK-ORDER."""

from helpers import make

from pcpfuzz.actions import Step
from pcpfuzz.mm.locking import spin_lock, spin_trylock, spin_unlock
from pcpfuzz.state import IRQ_OFF, SpinLock, Task, TaskGen


def _holder(s, t: Task, lock: SpinLock) -> TaskGen:
    yield from spin_lock(s, t, lock)
    yield IRQ_OFF
    spin_unlock(s, t, lock)
    return 1


def _start(s, cpu: int, body) -> Task:
    t = Task(100 + cpu, cpu, "test", (), None)  # type: ignore[arg-type]
    t.gen = body(s, t)
    s.cpus[cpu].task = t
    s.step_task(t)
    return t


def test_a_second_taker_spins_with_irqs_off_until_the_holder_unlocks() -> None:
    s = make(nr_cpus=2)
    lock = SpinLock("pcp->lock")
    s.spinlocks.append(lock)
    a = _start(s, 0, lambda s, t: _holder(s, t, lock))
    assert lock.owner == a.tid

    def taker(s, t):
        yield from spin_lock(s, t, lock, irqs_off=True)
        spin_unlock(s, t, lock)
        return 2

    b = _start(s, 1, taker)
    assert not b.runnable(s) and b.irq_off
    assert "spin_lock(pcp->lock)" in b.wait.describe()
    assert s.why_not(Step(1)) is not None
    s.apply(Step(0))
    assert lock.owner is None and s.cpus[0].task is None
    s.apply(Step(1))
    assert s.returned[1] == ("test", 2) and not s.bugs


def test_trylock_fails_while_held_and_a_task_may_not_end_holding_a_spinlock() -> None:
    s = make(nr_cpus=2)
    lock = SpinLock("zone->lock")
    s.spinlocks.append(lock)
    owner = Task(1, 0, "test", (), None)  # type: ignore[arg-type]
    other = Task(2, 1, "test", (), None)  # type: ignore[arg-type]
    assert spin_trylock(owner, lock)
    assert not spin_trylock(other, lock)

    def leaker(s, t):
        yield from spin_lock(s, t, SpinLock("unused"))
        lock.owner = t.tid
        return 0

    _start(s, 1, leaker)
    assert [v.invariant for v in s.bugs] == ["LOCK-ORDER"]
    assert "holding zone->lock" in s.bugs[0].message
