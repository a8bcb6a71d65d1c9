"""A deterministic fingerprint of a ``System``'s state, to compare two runs of the same actions
(replay's nondeterminism check) and, later, to recognise states already explored."""

from __future__ import annotations

import hashlib
from types import GeneratorType

from pcpfuzz.state import Task
from pcpfuzz.system import System


def _program_point(task: Task) -> tuple[tuple[str, int], ...]:
    """Where the task's generator stack is suspended: (function, line) down the
    ``yield from`` chain. Generator locals are not included."""
    out = []
    gen = task.gen
    while isinstance(gen, GeneratorType) and gen.gi_frame is not None:
        out.append((gen.gi_code.co_name, gen.gi_frame.f_lineno))
        gen = gen.gi_yieldfrom
    return tuple(out)


def _task(task: Task | None) -> tuple | None:
    if task is None:
        return None
    return (
        task.tid,
        task.op,
        task.args,
        task.wait.describe() if task.wait is not None else None,
        task.irq_off,
        task.signal_pending,
        task.hung,
        task.pcp_disabled_depth,
        task.loop_iterations,
        _program_point(task),
        task.context,
        task.preempt_only,
    )


def state_tuple(s: System) -> tuple:
    """The state as nested tuples of ints, strings and bools, in a fixed order (no dict or set
    iteration order leaks in); the trace log is left out."""
    z = s.zone
    return (
        s.profile.name,
        s.geo,
        tuple(tuple(tuple(fl) for fl in lists) for lists in z.free_list),
        tuple(z.nr_free),
        (z.nr_free_pages, z.nr_free_cma_pages, z.managed_pages, z.present_pages),
        (z.nr_isolate_pageblock, z.pageset_high, z.pageset_batch, z.pageset_is_boot),
        tuple(s.pageblock_mt),
        tuple(s.buddy_order),
        tuple(s.buddy_mt),
        tuple(s.cached_mt),
        tuple(s.alloc_head),
        tuple(sorted((pfn, b.order, b.movable, b.holder) for pfn, b in s.allocated.items())),
        tuple(sorted(s.inflight.items())),
        tuple(s.block_online),
        tuple(s.page_present),
        tuple(p.state() for p in s.pcp),
        tuple((c.online, c.work_pending, _task(c.task), _task(c.nested)) for c in s.cpus),
        s.fraction,
        tuple((m.name, m.owner) for m in (*s.mutexes, *s.spinlocks)),
        _rcu(s),
        (s.pcp_disabled, s.isolation_passes),
        tuple((u.tid, u.start, u.end, u.kind) for u in s.iso_users),
        tuple((v.invariant, v.message) for v in s.bugs),
        tuple(sorted(s.events.items())),
        (s.actions_applied, s.steps),
    )


def _rcu(s: System) -> tuple:
    """The rcu_sync state and the CPUs each live grace period still waits for."""
    rss = s.mem_hotplug_rss
    pending = None if rss.pending is None else tuple(sorted(rss.pending.cpus))
    return (
        (rss.gp_state, rss.gp_count, pending),
        tuple(tuple(sorted(gp.cpus)) for gp in s.grace_periods),
    )


def fingerprint(s: System) -> str:
    """A SHA-256 hex digest of ``state_tuple(s)``."""
    return hashlib.sha256(repr(state_tuple(s)).encode()).hexdigest()
