"""The SLUB memory-hotplug notifier, mm/slub.c: what ``memory_notify(MEM_GOING_OFFLINE)`` does
that the model needs (issue 11)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.mm.smp import on_each_cpu_cond, queue_work_on_each_cpu_and_flush
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def flush_all(s: System, t: Task) -> TaskGen:
    """``flush_all`` (5.10/5.11 mm/slub.c 2462): ``on_each_cpu_cond(has_cpu_slab,
    flush_cpu_slab, s, 1)``. The model has no slab caches: every CPU is taken to hold a CPU slab
    of some cache, so the IPI goes to every online CPU."""
    yield from on_each_cpu_cond(s, t, "flush_cpu_slab")
    return None


def flush_all_cpus_locked(s: System, t: Task) -> TaskGen:
    """6.1/6.12 ``flush_all_cpus_locked`` (6.1 mm/slub.c 2754, 6.12 3312), which
    ``slab_mem_going_offline_callback`` calls for every cache (6.1 4664, 6.12 5741):
    ``queue_work_on(cpu, flushwq, flush_cpu_slab)`` on every online CPU with a CPU slab (all
    of them, as in ``flush_all``), then ``flush_work`` each."""
    yield from queue_work_on_each_cpu_and_flush(s, t, "flush_cpu_slab")
    return None


def slab_mem_going_offline_callback(s: System, t: Task) -> TaskGen:
    """``slab_mem_going_offline_callback`` (5.10 mm/slub.c 4220, 5.11 4216), the
    MEM_GOING_OFFLINE case of ``slab_memory_callback``: ``__kmem_cache_shrink`` of every cache,
    each starting with ``flush_all``. One ``flush_all`` stands for them all: the later ones
    could only wait for more, so the model allows every interleaving the kernel does here."""
    yield from flush_all(s, t)
    return None
