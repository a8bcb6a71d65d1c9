"""The end of an example: let the other tasks finish, then check that each offline terminates
on its own (OFFLINE-TERM), then run everything to completion (DEADLOCK). Deterministic: tasks
are stepped in CPU order."""

from __future__ import annotations

from pcpfuzz.mm.drain import drain_local_pages_wq
from pcpfuzz.system import System
from pcpfuzz.violation import Violation

OFFLINE_BOUND = 64
"""Passes of its retry loops that an offline running alone may take before OFFLINE-TERM."""
STEP_BOUND = 20_000


def _run_round(s: System, skip_offline: bool) -> bool:
    """One round-robin pass over runnable tasks and drain work; whether anything ran."""
    ran = False
    for c in s.cpus:
        t = c.running()
        if t is not None and t.runnable(s) and not (skip_offline and t.op == "offline_pages"):
            s.step_task(t)
            ran = True
    for cpu in s.runnable_work():
        drain_local_pages_wq(s, cpu)
        ran = True
    return ran


def _quiesce(s: System, skip_offline: bool) -> None:
    for _ in range(STEP_BOUND):
        if not _run_round(s, skip_offline):
            return


def _stranded(s: System, start: int, end: int) -> list[str]:
    """Why the pages of ``[start, end)`` that are not in a free buddy block are not."""
    out = []
    pfn = start
    while pfn < end:
        order = s.buddy_order[pfn]
        if order >= 0:
            pfn += 1 << order
            continue
        out.append(f"pfn {pfn} {s.where(pfn)}")
        pfn += 1
    return out


def check_offline_terminates(s: System) -> list[Violation]:
    """Run each offline task alone (plus the drain work it waits for) for ``OFFLINE_BOUND``
    passes of its loops. One that cannot finish while its range holds no allocated page is
    OFFLINE-TERM; it is then signalled, so the example can end."""
    found = []
    for c in s.cpus:
        t = c.task
        if t is None or t.op != "offline_pages":
            continue
        limit = t.loop_iterations + OFFLINE_BOUND
        for _ in range(STEP_BOUND):
            if c.task is not t or t.loop_iterations >= limit:
                break
            cur = c.running()
            if cur is not None and cur.runnable(s):
                s.step_task(cur)
            elif work := s.runnable_work():
                drain_local_pages_wq(s, work[0])
            else:
                break
        if c.task is t and c.nested is None and t.runnable(s):
            start, end = s.geo.block_range(t.args[0])
            allocated = any(s.alloc_head[p] >= 0 for p in range(start, end))
            if not allocated:
                stranded = "; ".join(_stranded(s, start, end)) or "no page"
                found.append(
                    Violation(
                        "OFFLINE-TERM",
                        f"offline_pages(block {t.args[0]}) on CPU{t.cpu} cannot finish "
                        f"alone after {OFFLINE_BOUND} retries: {stranded}",
                    )
                )
            t.signal_pending = True
    return found


def finish(s: System) -> list[Violation]:
    """Bring the system to rest and report what kept it from resting."""
    _quiesce(s, skip_offline=True)
    found = check_offline_terminates(s)
    _quiesce(s, skip_offline=False)
    if s.stuck():
        waits = "; ".join(
            f"CPU{t.cpu} {t.op} in {t.wait.describe()}" for t in s.tasks() if t.wait is not None
        )
        found.append(Violation("DEADLOCK", f"every task is blocked: {waits}"))
    # alloc_log holds the allocations of the last action (checked after it) and of the steps
    # above, whose pages may since have been migrated and offlined: the check at rest must not
    # read them as allocations of offline pages.
    s.alloc_log.clear()
    return found
