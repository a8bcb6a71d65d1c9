"""The modelled machine and its one door: ``System.apply(action)``.

A ``System`` holds the state of one zone, its pages, the per-CPU pagesets, the CPUs, the locks
and the running tasks. ``enabled()`` lists the actions that can happen next; ``apply`` performs
one. Everything is deterministic: the driver makes every choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pcpfuzz.actions import Action, CpuDown, CpuUp, Run, RunWork, Signal, Start, Step
from pcpfuzz.constants import mt_name
from pcpfuzz.geometry import Geometry
from pcpfuzz.kernels import kernel_for
from pcpfuzz.mm.buddy import free_one_page
from pcpfuzz.mm.drain import drain_local_pages_wq
from pcpfuzz.mm6.buddy import __free_one_page as buddy_free_v61
from pcpfuzz.mm612.percpu import ZonePageset612
from pcpfuzz.ops import OPS, get_op
from pcpfuzz.profiles import Profile
from pcpfuzz.state import (
    IRQ_OFF,
    AllocBlock,
    Cpu,
    GracePeriod,
    IsolationUser,
    Mutex,
    PerCpuPages,
    RcuSync,
    SpinLock,
    Task,
    Wait,
    Zone,
)
from pcpfuzz.violation import Hang, Violation

RUN_BOUND = 400
"""The most steps one ``Run`` action takes before it yields control back to the driver."""


class NotEnabled(ValueError):
    """An action that cannot happen in the current state."""


class System:
    """One zone on ``geo.nr_cpus`` CPUs, running kernel ``profile``."""

    def __init__(
        self,
        profile: Profile,
        geo: Geometry,
        *,
        tracing: bool = False,
        keep_populated: bool = False,
    ) -> None:
        self.profile = profile
        self.keep_populated = keep_populated
        """A driver's restriction: no offline takes the zone's last online block
        (``pcpfuzz.ops.campaign_keeps_populated``)."""
        self.mm = kernel_for(profile)
        """The kernel code this profile runs (``pcpfuzz.kernels``)."""
        self.geo = geo
        self.tracing = tracing
        n = geo.nr_pages
        self.nr_pages = n
        self.zone = Zone(geo.max_order)
        self.pageblock_mt = [geo.boot_mt(pb) for pb in range(geo.nr_pageblocks)]
        self.buddy_order = [-1] * n
        self.buddy_mt = [0] * n
        self.cached_mt = [0] * n
        self.alloc_head = [-1] * n
        self.allocated: dict[int, AllocBlock] = {}
        self.inflight: dict[int, int] = {}
        self.block_online = [False] * geo.nr_blocks
        self.page_present = [False] * n
        """The page is managed by the buddy allocator: freed by online or boot, not offlined."""
        self.cpus = [Cpu() for _ in range(geo.nr_cpus)]
        self.pcp: list[Any] = [PerCpuPages() for _ in range(geo.nr_cpus)]
        """``PerCpuPages``, ``PerCpuPages61`` or ``PerCpuPages612``: each kernel's own."""
        self.zone612: ZonePageset612
        """v6.12 only: the zone's pageset cache (set at boot)."""
        self.fraction = geo.fraction
        self.pcp_batch_high_lock = Mutex("pcp_batch_high_lock")
        self.pcpu_drain_mutex = Mutex("pcpu_drain_mutex")
        self.mem_hotplug_lock = Mutex("mem_hotplug_lock")
        self.device_hotplug_lock = Mutex("device_hotplug_lock")
        self.mutexes = (
            self.pcp_batch_high_lock,
            self.pcpu_drain_mutex,
            self.mem_hotplug_lock,
            self.device_hotplug_lock,
        )
        self.mem_hotplug_rss = RcuSync("mem_hotplug_lock.rss")
        """``mem_hotplug_lock``'s ``rcu_sync``: ``percpu_down_write`` waits for a grace period."""
        self.grace_periods: list[GracePeriod] = []
        """Grace periods still waiting for some CPU to leave its IRQ-off step."""
        self.spinlocks: list[SpinLock] = []
        """The spinlocks a task may hold across steps (checked at task end, fingerprinted)."""
        self.zone_lock = SpinLock("zone->lock")
        """``zone->lock`` where a kernel holds it across steps (v6.1)."""
        self.pcp_disabled = False
        self.isolation_passes = 0
        """Ghost: tasks inside a start/undo isolation pass (FL-TYPE is checked outside)."""
        self.known_free_drift = 0
        """Ghost: NR_FREE_PAGES minus the freelists' count, caused by the undo-window defect
        every modelled kernel has (``pcpfuzz.mm.buddy.counted_free_pages``)."""
        self.known_isolate_drift = 0
        """Ghost: pageblocks ``nr_isolate_pageblock`` counts after a fallback steal rewrote them
        in an undo window (``pcpfuzz.mm.buddy.steal_suitable_fallback``)."""
        self.iso_users: list[IsolationUser] = []
        self.alloc_log: list[tuple[int, int, int]] = []
        self.bugs: list[Violation] = []
        self.events: dict[str, int] = {}
        self.log: list[tuple[int, int | None, str]] = []
        self.returned: list[tuple[str, int | None] | None] = [None] * geo.nr_cpus
        """What the last task to end on each CPU was and returned: (op, return value)."""
        self.actions_applied = 0
        self.steps = 0
        self._next_tid = 0
        self._boot()
        if self.mm.boot is not None:
            self.mm.boot(self)

    # ---- boot -------------------------------------------------------------------------------

    def _boot(self) -> None:
        """Boot memory: each online block's MAX_ORDER-1 chunks freed to the buddy, then
        ``setup_zone_pageset`` with the §8.2 values (no task exists yet)."""
        order = self.geo.max_order - 1
        for block in range(self.geo.initially_online):
            start, end = self.geo.block_range(block)
            self.block_online[block] = True
            self.page_present[start:end] = [True] * (end - start)
            for pfn in range(start, end, 1 << order):
                self._boot_free(pfn, order)
            self.zone.managed_pages += end - start
            self.zone.present_pages += end - start
        if self.zone.present_pages and self.mm.boot is None:
            high, batch = self.mm.zone_high_batch(self)
            self.zone.pageset_is_boot = False
            self.zone.pageset_high, self.zone.pageset_batch = high, batch
            for pcp in self.pcp:
                pcp.high, pcp.batch = high, batch

    def _boot_free(self, pfn: int, order: int) -> None:
        """Free a boot chunk to the buddy with the profile's ``__free_one_page``."""
        mt = self.pageblock_mt[self.pb(pfn)]
        if self.mm.boot is None:
            free_one_page(self, pfn, order, mt)
        else:
            buddy_free_v61(self, pfn, order, mt)

    # ---- helpers the model uses ---------------------------------------------------------------

    def pb(self, pfn: int) -> int:
        """The pageblock index of ``pfn``."""
        return pfn >> self.geo.pageblock_order

    def pfn_online(self, pfn: int) -> bool:
        """``pfn_to_online_page(pfn) != NULL``."""
        return self.block_online[pfn // self.geo.block_pages]

    def allocate(self, pfn: int, order: int, movable: bool, holder: int | None, t: Task) -> None:
        """Record a block handed out by the allocator."""
        self.allocated[pfn] = AllocBlock(order, movable, holder)
        for p in range(pfn, pfn + (1 << order)):
            self.alloc_head[p] = pfn
        self.alloc_log.append((pfn, order, t.tid))

    def release(self, pfn: int) -> int:
        """Take an allocated block from its owner to be freed: it is in flight until it reaches
        a pcplist or the buddy. Returns its order."""
        order = self.allocated.pop(pfn).order
        for p in range(pfn, pfn + (1 << order)):
            self.alloc_head[p] = -1
        self.inflight[pfn] = order
        return order

    def pool(self) -> list[int]:
        """Allocated blocks no task holds, by pfn: what the driver can free."""
        return sorted(pfn for pfn, blk in self.allocated.items() if blk.holder is None)

    def tasks(self) -> list[Task]:
        """The running tasks, by CPU."""
        return [c.task for c in self.cpus if c.task is not None]

    def isolation_begin(self, t: Task, start: int, end: int, kind: str) -> None:
        """Ghost state: ``t`` holds ``[start, end)`` isolated (ISO-NO-ALLOC, ISO-PCP)."""
        self.iso_users.append(IsolationUser(t.tid, start, end, kind))

    def isolation_end(self, t: Task) -> None:
        """Ghost state: ``t`` stops holding its range isolated."""
        self.iso_users = [u for u in self.iso_users if u.tid != t.tid]

    def where(self, pfn: int) -> str:
        """Where a page is, in words, for messages."""
        for cpu, pcp in enumerate(self.pcp):
            for idx, lst in enumerate(pcp.lists):
                order = pcp.order_of(idx)
                head = pfn & ~((1 << order) - 1)
                if head in lst:
                    return f"on CPU{cpu}'s {pcp.list_name(idx)} pcplist"
        head = self.alloc_head[pfn]
        if head >= 0:
            return f"allocated (block at pfn {head})"
        if pfn in self.inflight:
            return "in flight in a free"
        for order in range(self.geo.max_order):
            head = pfn & ~((1 << order) - 1)
            if self.buddy_order[head] == order:
                return f"in a free order-{order} block on the {mt_name(self.buddy_mt[head])} list"
        return "nowhere" if self.page_present[pfn] else "offline"

    def note(self, event: str) -> None:
        """Count a behaviour, for coverage statistics."""
        self.events[event] = self.events.get(event, 0) + 1

    def klog(self, cpu: int | None, text: str) -> None:
        """A kernel-style trace line (kept only when tracing)."""
        self.log.append((self.actions_applied, cpu, text))

    def bug(self, invariant: str, message: str) -> None:
        """A violation the kernel code itself detects (BUG_ON, a hang, a lock misuse)."""
        self.bugs.append(Violation(invariant, message))

    # ---- the door ------------------------------------------------------------------------------

    def enabled(self) -> list[Action]:
        """Every action that can happen next."""
        out: list[Action] = []
        hotplug_free = self.mem_hotplug_lock.owner is None
        online = sum(c.online for c in self.cpus)
        for i, c in enumerate(self.cpus):
            t = c.task
            if t is not None:
                if t.runnable(self):
                    out.append(Step(i))
                    out.append(Run(i))
                if t.op == "offline_pages" and not t.signal_pending:
                    out.append(Signal(i))
            elif c.online:
                for op in OPS.values():
                    if op.available(self.profile):
                        out.extend(Start(i, op.name, a) for a in op.args(self))
            if c.work_pending and c.online and (t is None or not t.irq_off):
                out.append(RunWork(i))
            idle = t is None and not c.work_pending
            if hotplug_free and idle and self.mm.cpu_hotplug_allowed(self, i):
                if c.online and online > 1:
                    out.append(CpuDown(i))
                elif not c.online:
                    out.append(CpuUp(i))
        return out

    def why_not(self, action: Action) -> str | None:
        """None when ``action`` is enabled, else the reason it is not."""
        cpu = action.cpu
        if not 0 <= cpu < len(self.cpus):
            return f"no CPU{cpu}"
        c = self.cpus[cpu]
        t = c.task
        match action:
            case Start(op=name, args=args):
                op = OPS.get(name)
                if op is None or not op.available(self.profile):
                    return f"unknown operation {name!r} for profile {self.profile.name}"
                if not c.online:
                    return f"CPU{cpu} is offline"
                if t is not None:
                    return f"CPU{cpu} is running {t.op}"
                if tuple(args) not in op.args(self):
                    return f"{op.describe(tuple(args)) if args else name}: arguments not enabled"
            case Step() | Run():
                if t is None:
                    return f"CPU{cpu} has no task"
                if not t.runnable(self):
                    waits = "" if t.wait is None else f" in {t.wait.describe()}"
                    return f"CPU{cpu}'s {t.op} is blocked{waits}"
            case RunWork():
                if not c.work_pending:
                    return f"CPU{cpu} has no drain work pending"
                if t is not None and t.irq_off:
                    return f"CPU{cpu} has IRQs off"
            case Signal():
                if t is None or t.op != "offline_pages" or t.signal_pending:
                    return f"CPU{cpu} runs no offline_pages to signal"
            case CpuDown() | CpuUp():
                if self.mem_hotplug_lock.owner is not None:
                    return "memory hotplug holds cpus_read_lock"
                if t is not None or c.work_pending or not self.mm.cpu_hotplug_allowed(self, cpu):
                    return f"CPU{cpu} is busy"
                if isinstance(action, CpuDown) and (
                    not c.online or sum(x.online for x in self.cpus) < 2
                ):
                    return f"CPU{cpu} cannot go down"
                if isinstance(action, CpuUp) and c.online:
                    return f"CPU{cpu} is already online"
        return None

    def apply(self, action: Action) -> None:
        """Perform one enabled action; raises ``NotEnabled`` otherwise."""
        reason = self.why_not(action)
        if reason is not None:
            raise NotEnabled(f"{action}: {reason}")
        self.actions_applied += 1
        self.alloc_log.clear()
        cpu = action.cpu
        c = self.cpus[cpu]
        match action:
            case Start(op=name, args=args):
                op = get_op(name)
                if self.tracing:
                    self.klog(cpu, op.describe(tuple(args)))
                self._start(cpu, name, tuple(args), lambda t: op.run(self, t, *args))
            case Step():
                self.step_task(c.task)
            case Run():
                self._run(cpu)
            case RunWork():
                drain_local_pages_wq(self, cpu)
            case Signal():
                c.task.signal_pending = True
            case CpuDown() | CpuUp() if self.mm.cpu_hotplug is not None:
                up = isinstance(action, CpuUp)
                hotplug = self.mm.cpu_hotplug
                name = "cpu_up" if up else "cpu_down"
                self._start(cpu, name, (), lambda t: hotplug(self, t, cpu, up))
            case CpuDown():
                c.online = False
                assert self.mm.page_alloc_cpu_dead is not None
                self.mm.page_alloc_cpu_dead(self, cpu)
                if self.tracing:
                    self.klog(cpu, f"CPU{cpu} offline: page_alloc_cpu_dead drained it")
            case CpuUp():
                c.online = True
                assert self.mm.page_alloc_cpu_online is not None
                self.mm.page_alloc_cpu_online(self, cpu)

    def _start(self, cpu: int, name: str, args: tuple[int, ...], run: Callable) -> None:
        """Start task ``name`` on ``cpu`` (its generator made by ``run``) and run its first step."""
        tid = self._next_tid
        self._next_tid += 1
        t = Task(tid, cpu, name, args, None)  # type: ignore[arg-type]
        t.gen = run(t)
        self.cpus[cpu].task = t
        self.step_task(t)

    def step_task(self, t: Task) -> None:
        """Run ``t`` to its next yield."""
        self.steps += 1
        try:
            y = next(t.gen)
        except StopIteration as stop:
            self._task_done(t, stop.value)
            return
        except Hang as hang:
            t.hung = True
            self.bug("HANG", str(hang))
            return
        was_off = t.irq_off
        if isinstance(y, Wait):
            t.wait = y
            t.irq_off = y.irqs_off
        else:
            t.wait = None
            t.irq_off = y is IRQ_OFF
        if was_off and not t.irq_off and self.grace_periods:
            self._quiescent(t.cpu)

    def _quiescent(self, cpu: int) -> None:
        """``cpu`` left its IRQ-off step: no grace period waits for it any more."""
        for gp in self.grace_periods:
            gp.cpus.discard(cpu)
        self.grace_periods = [gp for gp in self.grace_periods if gp.cpus]

    def _task_done(self, t: Task, ret: int | None) -> None:
        self.cpus[t.cpu].task = None
        if t.irq_off and self.grace_periods:
            self._quiescent(t.cpu)
        self.returned[t.cpu] = (t.op, ret)
        if self.tracing and ret is not None:
            self.klog(t.cpu, f"{t.op} returns {ret}")
        for m in (*self.mutexes, *self.spinlocks):
            if m.owner == t.tid:
                self.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} returned {ret} holding {m.name}")
        if t.pcp_disabled_depth:
            self.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} returned {ret} with pcplists disabled")

    def _run(self, cpu: int) -> None:
        """Step the task on ``cpu``, running its own drain work while it sleeps, until it ends,
        blocks on something else, or ``RUN_BOUND`` steps pass."""
        c = self.cpus[cpu]
        for _ in range(RUN_BOUND):
            t = c.task
            if t is None or t.hung:
                return
            if t.runnable(self):
                self.step_task(t)
            elif c.work_pending:
                drain_local_pages_wq(self, cpu)
            else:
                return

    def runnable_work(self) -> list[int]:
        """CPUs whose pending drain work can run now."""
        return [
            i
            for i, c in enumerate(self.cpus)
            if c.work_pending and c.online and (c.task is None or not c.task.irq_off)
        ]

    def stuck(self) -> bool:
        """Some task is blocked, and no task and no drain work can run."""
        tasks = self.tasks()
        return (
            any(not t.hung for t in tasks)
            and not any(t.runnable(self) for t in tasks)
            and not self.runnable_work()
        )
