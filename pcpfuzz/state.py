"""Model state as plain data: the zone, struct page fields, per-CPU pagesets, CPUs, locks, tasks.

Nothing here runs kernel code; ``pcpfuzz.mm`` mutates these objects and ``pcpfuzz.system`` owns
them. Field names follow the kernel's (spec §2).
"""

from collections.abc import Generator
from typing import Any

import attrs

from pcpfuzz.constants import MIGRATE_PCPTYPES, MIGRATE_TYPES, mt_name


@attrs.define(slots=True)
class PerCpuPages:
    """``struct per_cpu_pages`` (spec §2.2). Each list holds pfns, index 0 is the list head."""

    high: int = 0
    batch: int = 1
    count: int = 0
    lists: list[list[int]] = attrs.Factory(lambda: [[] for _ in range(MIGRATE_PCPTYPES)])
    freed: bool = False
    """Ghost: ``zone_pcp_reset`` has freed this pageset (``free_percpu``); a task still holding
    it uses freed memory (PCP-UAF)."""

    def order_of(self, _index: int) -> int:
        """The order of the entries of list ``index``: order 0 only (spec §2.2)."""
        return 0

    def pindex(self, mt: int, _order: int) -> int:
        """The list a page of pcp type ``mt`` goes on: one list per type."""
        return mt

    def list_name(self, index: int) -> str:
        """List ``index`` in words: its migratetype."""
        return mt_name(index)

    def locked(self) -> bool:
        """Whether some task holds the pageset's lock across steps: never (a local lock)."""
        return False

    def state(self) -> tuple:
        """The pageset as a tuple, for fingerprints."""
        return (self.high, self.batch, self.count, tuple(map(tuple, self.lists)))


@attrs.define(slots=True)
class Zone:
    """The fields of ``struct zone`` the model needs (spec §2.3)."""

    max_order: int
    free_list: list[list[list[int]]] = attrs.field(init=False)
    nr_free: list[int] = attrs.field(init=False)
    nr_free_pages: int = 0
    """``vm_stat[NR_FREE_PAGES]``, kept exact."""
    nr_free_cma_pages: int = 0
    managed_pages: int = 0
    present_pages: int = 0
    nr_isolate_pageblock: int = 0
    pageset_high: int = 0
    """v5.11 (patch 5) cached high; ``BOOT_PAGESET_HIGH`` until first set."""
    pageset_batch: int = 1
    pageset_is_boot: bool = True
    """``zone->pageset == &boot_pageset`` (unpopulated zone)."""
    watermark: tuple[int, int, int] = (0, 0, 0)
    """v6.1 ``_watermark[WMARK_MIN, WMARK_LOW, WMARK_HIGH]`` (modern-kernels §5.5)."""

    def __attrs_post_init__(self) -> None:
        self.free_list = [[[] for _ in range(MIGRATE_TYPES)] for _ in range(self.max_order)]
        self.nr_free = [0] * self.max_order


@attrs.define(slots=True)
class AllocBlock:
    """An allocated block: its order, whether it is movable (LRU), and the task holding it."""

    order: int
    movable: bool
    holder: int | None = None
    """``None``: in the pool that the driver frees from; else the id of the task that holds it."""


@attrs.define(slots=True, eq=False)
class Mutex:
    """A sleeping lock. ``owner`` is the id of the holding task."""

    name: str
    owner: int | None = None


class Wait:
    """What a blocked task waits for; a task yields one to sleep."""

    __slots__ = ()
    irqs_off = False
    """Whether the task waits with IRQs off (spinning in ``spin_lock_irqsave``)."""
    preempt_only = False
    """With ``irqs_off``: only preemption is off (spinning in a plain ``spin_lock``, v6.12)."""

    def ready(self, sys: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class MutexWait(Wait):
    """Sleeping in ``mutex_lock`` until the lock is free."""

    __slots__ = ("mutex",)

    def __init__(self, mutex: Mutex) -> None:
        self.mutex = mutex

    def ready(self, sys: Any) -> bool:
        return self.mutex.owner is None

    def describe(self) -> str:
        return f"mutex_lock({self.mutex.name})"


@attrs.define(slots=True, eq=False)
class SpinLock:
    """A spinning lock (``spinlock_t``) that a task may hold across atomic steps. ``owner`` is
    the id of the holding task. It excludes only the tasks that take it: a lockless reader
    sees every step of a section that holds it."""

    name: str
    owner: int | None = None


class SpinWait(Wait):
    """Spinning in ``spin_lock`` until the lock is free; ``irqs_off`` for ``spin_lock_irqsave``
    (the CPU's drain work cannot run meanwhile); with ``preempt_only``, a plain ``spin_lock``
    that leaves IRQs on (v6.12's drainers: an interrupt may nest)."""

    __slots__ = ("lock", "irqs_off", "preempt_only")

    def __init__(self, lock: SpinLock, irqs_off: bool, preempt_only: bool = False) -> None:
        self.lock = lock
        self.irqs_off = irqs_off
        self.preempt_only = preempt_only

    def ready(self, sys: Any) -> bool:
        return self.lock.owner is None

    def describe(self) -> str:
        return f"spin_lock({self.lock.name}), held by task {self.lock.owner}"


class WorkWait(Wait):
    """Sleeping in ``flush_work`` until the drain work posted to ``cpus`` has run."""

    __slots__ = ("cpus",)

    def __init__(self, cpus: tuple[int, ...]) -> None:
        self.cpus = cpus

    def ready(self, sys: Any) -> bool:
        cpus = sys.cpus
        for c in self.cpus:  # noqa: SIM110 (a loop: no generator per call, a hot path)
            if cpus[c].work_pending:
                return False
        return True

    def describe(self) -> str:
        return f"flush_work(pcpu_drain on CPU{','.join(map(str, self.cpus))})"


class GracePeriod:
    """An RCU grace period: ``cpus`` are the CPUs that were inside an IRQ-off step when it began
    and have not left it yet (an IRQ-off region is an RCU read-side critical section). It has
    passed when ``cpus`` is empty."""

    __slots__ = ("cpus",)

    def __init__(self, cpus: set[int]) -> None:
        self.cpus = cpus


class GracePeriodWait(Wait):
    """Sleeping in ``synchronize_rcu`` until grace period ``gp`` has passed."""

    __slots__ = ("gp",)

    def __init__(self, gp: GracePeriod) -> None:
        self.gp = gp

    def ready(self, sys: Any) -> bool:
        return not self.gp.cpus

    def describe(self) -> str:
        return f"synchronize_rcu(), CPU{','.join(map(str, sorted(self.gp.cpus)))} IRQ-off"


class IpiWait(GracePeriodWait):
    """Waiting in ``smp_call_function_many_cond(..., wait=1)`` for ``func`` to have run on every
    CPU of ``gp``: a CPU takes the IPI when its IRQ-off step ends (the same quiescence as a
    grace period)."""

    __slots__ = ("func",)

    def __init__(self, gp: GracePeriod, func: str) -> None:
        super().__init__(gp)
        self.func = func

    def describe(self) -> str:
        cpus = ",".join(map(str, sorted(self.gp.cpus)))
        return f"on_each_cpu_cond({self.func}, wait=1), CPU{cpus} IRQ-off"


RCU_SYNC_STATES = ("GP_IDLE", "GP_ENTER", "GP_PASSED", "GP_EXIT", "GP_REPLAY")


@attrs.define(slots=True, eq=False)
class RcuSync:
    """``struct rcu_sync`` of a percpu_rw_semaphore (kernel/rcu/sync.c): ``gp_state`` indexes
    ``RCU_SYNC_STATES``; ``pending`` is the grace period of the queued ``rcu_sync_func``."""

    name: str
    gp_state: int = 0
    gp_count: int = 0
    pending: GracePeriod | None = None


IRQ_OFF = "irq-off"
"""Yielded inside an IRQ-off section: other CPUs run, this CPU's drain work does not."""
PREEMPT_OFF = "preempt-off"
"""Yielded inside a preemption-off section with IRQs on (v6.12 pcp sections): as ``IRQ_OFF``
for RCU, IPIs and kworkers (the task's ``irq_off`` is set), but an interrupt may nest."""

Yielded = Wait | str | None
TaskGen = Generator[Yielded, None, int | None]


@attrs.define(slots=True, eq=False)
class Task:
    """A kernel operation running on a CPU, as a generator that yields at atomic-step boundaries."""

    tid: int
    cpu: int
    op: str
    args: tuple[int, ...]
    gen: TaskGen = attrs.field(repr=False)
    wait: Wait | None = None
    irq_off: bool = False
    signal_pending: bool = False
    hung: bool = False
    pcp_disabled_depth: int = 0
    loop_iterations: int = 0
    """Offline: passes of the retry loops (scans and isolation tests), for the liveness bound."""
    pcp_draining: bool = False
    """Ghost (v6.1 DRAIN-LOCKED): the task holds a ``pcp->lock`` as a drainer, not as its owner."""
    preempt_only: bool = False
    """The step ``irq_off`` marks has IRQs on (``PREEMPT_OFF``): an interrupt may nest."""
    context: str = "task"
    """``task``; or, for a context nested over the CPU's task, ``irq`` (a hardirq: never
    preemptible, never sleeps) or ``kworker`` (a work item that preempted the task)."""

    def runnable(self, sys: Any) -> bool:
        return not self.hung and (self.wait is None or self.wait.ready(sys))


@attrs.define(slots=True)
class Cpu:
    """A simulated CPU: online or not, the task on it, and its pending ``pcpu_drain`` work."""

    online: bool = True
    task: Task | None = None
    work_pending: bool = False
    nested: Task | None = None
    """An interrupt or a preempting kworker running over ``task``: the CPU runs only it until
    it ends, then ``task`` resumes."""

    def running(self) -> Task | None:
        """The innermost context: what a step of this CPU runs."""
        return self.task if self.nested is None else self.nested

    def atomic(self) -> bool:
        """Nothing may preempt this CPU now (RCU, IPIs and kworkers wait): a context is in an
        IRQ-off or preemption-off step, or a hardirq runs."""
        t, n = self.task, self.nested
        if n is not None and (n.irq_off or n.context == "irq"):
            return True
        return t is not None and t.irq_off

    def in_section(self) -> bool:
        """Some context of this CPU is inside an IRQ-off or preemption-off step (a pcp or
        ``zone->lock`` section): what invariants checked between sections skip."""
        t, n = self.task, self.nested
        return (t is not None and t.irq_off) or (n is not None and n.irq_off)


@attrs.frozen
class IsolationUser:
    """A range held isolated by a task (ghost state for ISO-NO-ALLOC and ISO-PCP)."""

    tid: int
    start: int
    end: int
    kind: str
    """``offline`` or ``contig``."""


PAGE_ALLOC_COSTLY_ORDER = 3
NR_LOWORDER_PCP_LISTS = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + 1
"""v6.1 (modern-kernels §1.2): 12 lists indexed by (order <= 3, type) and one THP list."""


def pindex_to_order(index: int, thp_order: int) -> int:
    """v6.1/v6.12 ``pindex_to_order``: the low-order lists by (order, type), then THP."""
    return index // MIGRATE_PCPTYPES if index < NR_LOWORDER_PCP_LISTS else thp_order


@attrs.define(slots=True, eq=False)
class PerCpuPages61:
    """v6.1 ``struct per_cpu_pages`` (modern-kernels §1.1): ``lock`` is the per-(CPU, zone)
    ``pcp->lock``; ``lists`` are indexed by ``order_to_pindex``; ``count`` is in pages; the THP
    list holds blocks of ``thp_order`` (``pageblock_order`` in v6.1)."""

    lock: SpinLock
    thp_order: int
    high: int = 0
    batch: int = 1
    count: int = 0
    free_factor: int = 0
    lists: list[list[int]] = attrs.Factory(lambda: [[] for _ in range(NR_PCP_LISTS)])
    freed: bool = False
    """Ghost, as ``PerCpuPages.freed``: the v6.1 ``zone_pcp_reset`` freed it."""

    def order_of(self, index: int) -> int:
        """``pindex_to_order``."""
        return pindex_to_order(index, self.thp_order)

    def pindex(self, mt: int, order: int) -> int:
        """``order_to_pindex``: one THP list shared by every type."""
        if order > PAGE_ALLOC_COSTLY_ORDER:
            return NR_LOWORDER_PCP_LISTS
        return MIGRATE_PCPTYPES * order + mt

    def list_name(self, index: int) -> str:
        """List ``index`` in words: its order and type, or THP."""
        if index >= NR_LOWORDER_PCP_LISTS:
            return f"THP (order {self.thp_order})"
        return f"order-{self.order_of(index)} {mt_name(index % MIGRATE_PCPTYPES)}"

    def locked(self) -> bool:
        """Whether a task holds ``pcp->lock`` (count and lists may disagree inside a section)."""
        return self.lock.owner is not None

    def state(self) -> tuple:
        """The pageset as a tuple, for fingerprints."""
        return (
            self.high,
            self.batch,
            self.count,
            self.free_factor,
            tuple(map(tuple, self.lists)),
        )
