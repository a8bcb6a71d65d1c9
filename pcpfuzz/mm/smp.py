"""Cross-CPU function calls that wait, kernel/smp.c (issue 11): the caller sleeps until every
target CPU has run the function, which a CPU does only once its IRQ-off step has ended."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.mm.locking import wait_until
from pcpfuzz.mm.rcu import start_grace_period
from pcpfuzz.state import IpiWait, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


class FlushWorkWait(IpiWait):
    """Waiting in ``flush_work`` for a work item ``func`` queued on every CPU of ``gp``: a CPU
    runs its kworker once it can schedule, i.e. when its IRQ-off or preemption-off step ends
    (the model's IRQ-off steps stand for both)."""

    __slots__ = ()

    def describe(self) -> str:
        cpus = ",".join(map(str, sorted(self.gp.cpus)))
        return f"flush_work({self.func}), CPU{cpus} not preemptible"


def wait_for_cpus(s: System, t: Task, w: IpiWait, call: str, why: str) -> TaskGen:
    """Sleep in ``w`` until every other CPU that is inside an IRQ-off step now has left it;
    the log names the wait (``call``) and what the CPUs are (``why``)."""
    if w.gp.cpus and s.tracing:
        cpus = ",".join(map(str, sorted(w.gp.cpus)))
        s.klog(t.cpu, f"{call}: waits for CPU{cpus} ({why})")
    yield from wait_until(s, w)
    return None


def on_each_cpu_cond(s: System, t: Task, func: str) -> TaskGen:
    """``on_each_cpu_cond(cond_func, func, info, wait=1)`` (5.10 kernel/smp.c 956, through
    ``smp_call_function_many_cond`` 619): IPI every other online CPU and wait for each to have
    run ``func``. A CPU takes the IPI when it enables IRQs, so the caller waits for every CPU
    that is inside an IRQ-off step now. ``cond_func`` is taken as true on every CPU."""
    w = IpiWait(start_grace_period(s, t), func)
    yield from wait_for_cpus(s, t, w, f"on_each_cpu_cond({func}, wait=1)", "IRQ-off")
    return None


def queue_work_on_each_cpu_and_flush(s: System, t: Task, func: str) -> TaskGen:
    """``queue_work_on(cpu, wq, work)`` on every online CPU, then ``flush_work`` of each (6.1
    mm/slub.c 2754-2782, 6.12 3312-3340 ``flush_all_cpus_locked``): the caller waits for every
    other CPU that cannot schedule now (inside an IRQ-off or preemption-off step). The
    kworker on a CPU that can schedule may run at once, so no later section delays it."""
    w = FlushWorkWait(start_grace_period(s, t), func)
    yield from wait_for_cpus(s, t, w, f"flush_work({func})", "not preemptible")
    return None
