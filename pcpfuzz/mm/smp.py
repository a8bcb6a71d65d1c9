"""Cross-CPU function calls that wait, kernel/smp.c (issue 11): the caller sleeps until every
target CPU has run the function, which a CPU does only once its IRQ-off step has ended."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.mm.locking import wait_until
from pcpfuzz.mm.rcu import start_grace_period
from pcpfuzz.state import IpiWait, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def on_each_cpu_cond(s: System, t: Task, func: str) -> TaskGen:
    """``on_each_cpu_cond(cond_func, func, info, wait=1)`` (5.10 kernel/smp.c 956, through
    ``smp_call_function_many_cond`` 619): IPI every other online CPU and wait for each to have
    run ``func``. A CPU takes the IPI when it enables IRQs, so the caller waits for every CPU
    that is inside an IRQ-off step now. ``cond_func`` is taken as true on every CPU."""
    gp = start_grace_period(s, t)
    if gp.cpus and s.tracing:
        cpus = ",".join(map(str, sorted(gp.cpus)))
        s.klog(t.cpu, f"on_each_cpu_cond({func}, wait=1): waits for CPU{cpus} (IRQ-off)")
    yield from wait_until(s, IpiWait(gp, func))
    return None
