"""The modelled machine and its one door: ``System.apply(action)``.

A ``System`` holds the state of one zone, its pages, the per-CPU pagesets, the CPUs, the locks
and the running tasks. ``enabled()`` lists the actions that can happen next; ``apply`` performs
one. Everything is deterministic: the driver makes every choice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pcpfuzz.actions import Action, CpuDown, CpuUp, Interrupt, Run, RunWork, Signal, Start, Step
from pcpfuzz.build import mypyc_attr
from pcpfuzz.constants import mt_name
from pcpfuzz.dirty import ALL, ALLOC, BUGS, ISO, page_moved
from pcpfuzz.geometry import Geometry
from pcpfuzz.kernels import kernel_for
from pcpfuzz.mm.buddy import free_one_page
from pcpfuzz.mm.drain import drain_local_pages_wq
from pcpfuzz.mm6.buddy import __free_one_page as buddy_free_v61
from pcpfuzz.mm612.percpu import ZonePageset612
from pcpfuzz.ops import CONTEXT_LABEL, NESTED_OPS, OPS, get_op, interrupts_modelled, nested_args
from pcpfuzz.profiles import Profile
from pcpfuzz.state import (
    IRQ_OFF,
    PREEMPT_OFF,
    AllocBlock,
    Cpu,
    GracePeriod,
    IsolationUser,
    Mutex,
    PerCpuPages,
    RcuSync,
    SpinLock,
    SpinWait,
    Task,
    Wait,
    Zone,
)
from pcpfuzz.violation import Hang, Violation

if TYPE_CHECKING:
    from pcpfuzz.incremental import Memo

RUN_BOUND = 400
"""The most steps one ``Run`` action takes before it yields control back to the driver."""


class NotEnabled(ValueError):
    """An action that cannot happen in the current state."""


@mypyc_attr(allow_interpreted_subclasses=True)
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
        self.dirty = ALL
        """The parts of the state written since the incremental checker last looked
        (``pcpfuzz.dirty``)."""
        self.free_journal: list[tuple[int, int, int, int]] = []
        """Free-list entries (head, order, type, +1 or -1) added and removed since then."""
        self.page_journal: list[tuple[int, int, int]] = []
        """Blocks (head, order, +1 or -1) put on or taken off a pcplist, allocated, or landed
        from flight since then."""
        self.check_memo: Memo | None = None
        """The incremental checker's memo of this system (``pcpfuzz.incremental``): None until
        the first check; a copy of the system must not share it."""
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
        page_moved(self, ALLOC, pfn, order, 1)
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
        self.dirty |= ALLOC
        return order

    def pool(self) -> list[int]:
        """Allocated blocks no task holds, by pfn: what the driver can free."""
        return sorted(pfn for pfn, blk in self.allocated.items() if blk.holder is None)

    def tasks(self) -> list[Task]:
        """The running tasks, by CPU (a CPU's task, then the context nested over it)."""
        return [t for c in self.cpus for t in (c.task, c.nested) if t is not None]

    def nested_ops(self, cpu: int) -> list[str]:
        """The operations an ``Interrupt`` of ``cpu`` may start now (``NESTED_OPS``): only over
        a task (an idle CPU runs the same code as a ``Start``), one nested context at a time.
        A hardirq needs IRQs on (v6.1, v6.12: the kernels with a trylock fallback); the
        vmstat kworker needs the task preemptible and not itself the vmstat work."""
        c = self.cpus[cpu]
        t = c.task
        if t is None or t.hung or c.nested is not None or not c.online:
            return []
        out = []
        for name, context in NESTED_OPS.items():
            if not OPS[name].available(self.profile):
                continue
            if context == "irq":
                able = interrupts_modelled(self.profile) and (not t.irq_off or t.preempt_only)
            else:
                able = not t.irq_off and t.op != name
            if able:
                out.append(name)
        return out

    def work_runnable(self, cpu: int) -> bool:
        """``cpu``'s pending drain work can run now: nothing nested, nothing atomic."""
        c = self.cpus[cpu]
        return c.work_pending and c.online and c.nested is None and not c.atomic()

    def isolation_begin(self, t: Task, start: int, end: int, kind: str) -> None:
        """Ghost state: ``t`` holds ``[start, end)`` isolated (ISO-NO-ALLOC, ISO-PCP)."""
        self.iso_users.append(IsolationUser(t.tid, start, end, kind))
        self.dirty |= ISO

    def isolation_end(self, t: Task) -> None:
        """Ghost state: ``t`` stops holding its range isolated."""
        self.iso_users = [u for u in self.iso_users if u.tid != t.tid]
        self.dirty |= ISO

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
        """A kernel-style trace line (kept only when tracing); a line of a nested context
        is marked with it (``<IRQ>``, ``<kworker>``)."""
        nested = None if cpu is None else self.cpus[cpu].nested
        if nested is not None:
            text = f"<{CONTEXT_LABEL[nested.context]}> {text}"
        self.log.append((self.actions_applied, cpu, text))

    def bug(self, invariant: str, message: str) -> None:
        """A violation the kernel code itself detects (BUG_ON, a hang, a lock misuse)."""
        self.bugs.append(Violation(invariant, message))
        self.dirty |= BUGS

    # ---- the door ------------------------------------------------------------------------------

    def enabled(self) -> list[Action]:
        """Every action that can happen next."""
        out: list[Action] = []
        hotplug_free = self.mem_hotplug_lock.owner is None
        online = sum(c.online for c in self.cpus)
        for i, c in enumerate(self.cpus):
            t = c.task
            if t is not None:
                cur = c.running()
                if cur is not None and cur.runnable(self):
                    out.append(Step(i))
                    out.append(Run(i))
                if t.op == "offline_pages" and not t.signal_pending:
                    out.append(Signal(i))
                for name in self.nested_ops(i):
                    out.extend(Interrupt(i, name, a) for a in nested_args(self, name))
            elif c.online:
                for op in OPS.values():
                    if op.available(self.profile):
                        out.extend(Start(i, op.name, a) for a in op.args(self))
            if self.work_runnable(i):
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
                cur = c.running()
                if cur is None:
                    return f"CPU{cpu} has no task"
                if not cur.runnable(self):
                    waits = "" if cur.wait is None else f" in {cur.wait.describe()}"
                    return f"CPU{cpu}'s {cur.op} is blocked{waits}"
            case RunWork():
                if not c.work_pending:
                    return f"CPU{cpu} has no drain work pending"
                if c.nested is not None:
                    return f"CPU{cpu} runs a nested {c.nested.op}"
                if c.atomic():
                    return f"CPU{cpu} has IRQs off"
            case Interrupt(op=name, args=args):
                if name not in NESTED_OPS:
                    return f"{name!r} is not an operation an interrupt runs"
                if name not in self.nested_ops(cpu):
                    return f"CPU{cpu} cannot be interrupted by {name} now"
                if tuple(args) not in nested_args(self, name):
                    return f"{OPS[name].describe(tuple(args))}: arguments not enabled"
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
                running = c.running()
                assert running is not None, "Step is enabled only on a CPU with a task"
                self.step_task(running)
            case Interrupt(op=name, args=args):
                op = OPS[name]
                context = NESTED_OPS[name]
                self.note(f"interrupt: <{CONTEXT_LABEL[context]}> {name}")
                if self.tracing:
                    self.klog(cpu, f"<{CONTEXT_LABEL[context]}> {op.describe(tuple(args))}")
                self._start(cpu, name, tuple(args), lambda t: op.run(self, t, *args), context)
            case Run():
                self._run(cpu)
            case RunWork():
                drain_local_pages_wq(self, cpu)
            case Signal():
                assert c.task is not None, "Signal is enabled only on a CPU with a task"
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

    def _start(
        self, cpu: int, name: str, args: tuple[int, ...], run: Callable, context: str = "task"
    ) -> None:
        """Start task ``name`` on ``cpu`` (its generator made by ``run``), as the CPU's task or
        nested over it (``context``), and run its first step."""
        tid = self._next_tid
        self._next_tid += 1
        t = Task(tid, cpu, name, args, None, context=context)  # type: ignore[arg-type]
        t.gen = run(t)
        if context == "task":
            self.cpus[cpu].task = t
        else:
            self.cpus[cpu].nested = t
        self.step_task(t)

    def step_task(self, t: Task) -> None:
        """Run ``t`` to its next yield."""
        self.steps += 1
        c = self.cpus[t.cpu]
        was_off = c.atomic()
        try:
            y = next(t.gen)
        except StopIteration as stop:
            self._task_done(t, stop.value)
            return
        except Hang as hang:
            t.hung = True
            self.bug("HANG", str(hang))
            return
        if isinstance(y, Wait):
            t.wait = y
            t.irq_off = y.irqs_off
            t.preempt_only = y.preempt_only
            if t.context != "task":
                self._nested_wait(t, y)
        else:
            t.wait = None
            t.irq_off = y is IRQ_OFF or y is PREEMPT_OFF
            t.preempt_only = y is PREEMPT_OFF
        if was_off and not c.atomic() and self.grace_periods:
            self._quiescent(t.cpu)

    def _nested_wait(self, t: Task, w: Wait) -> None:
        """A nested context blocks: a hardirq may not sleep (``might_sleep`` in IRQ context),
        and neither nested context can wait for a spinlock held by the task it interrupted
        (that task cannot run until it ends: a real deadlock). Both are reported (LOCK-ORDER)
        and the context hangs."""
        base = self.cpus[t.cpu].task
        where = f"CPU{t.cpu} <{CONTEXT_LABEL[t.context]}> {t.op}"
        if t.context == "irq" and not isinstance(w, SpinWait):
            self.bug("LOCK-ORDER", f"{where} sleeps in {w.describe()} in IRQ context")
        elif isinstance(w, SpinWait) and base is not None and w.lock.owner == base.tid:
            self.bug(
                "LOCK-ORDER",
                f"{where} spins on {w.lock.name}, held by the {base.op} it interrupted: deadlock",
            )
        else:
            return
        t.hung = True

    def _quiescent(self, cpu: int) -> None:
        """``cpu`` left its IRQ-off step: no grace period waits for it any more."""
        for gp in self.grace_periods:
            gp.cpus.discard(cpu)
        self.grace_periods = [gp for gp in self.grace_periods if gp.cpus]

    def _task_done(self, t: Task, ret: int | None) -> None:
        c = self.cpus[t.cpu]
        was_off = c.atomic()
        if t.context == "task":
            c.task = None
        else:
            c.nested = None
        if was_off and not c.atomic() and self.grace_periods:
            self._quiescent(t.cpu)
        if t.context == "task":
            self.returned[t.cpu] = (t.op, ret)
        if self.tracing and ret is not None:
            self.klog(t.cpu, f"{t.op} returns {ret}")
        held: tuple[Mutex | SpinLock, ...] = (*self.mutexes, *self.spinlocks)
        for m in held:
            if m.owner == t.tid:
                self.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} returned {ret} holding {m.name}")
        if t.pcp_disabled_depth:
            self.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} returned {ret} with pcplists disabled")

    def _run(self, cpu: int) -> None:
        """Step the task on ``cpu`` (the innermost context), running its own drain work while it
        sleeps, until it ends, blocks on something else, or ``RUN_BOUND`` steps pass. A nested
        context's run ends with it: the task it interrupted resumes at the next action."""
        c = self.cpus[cpu]
        first = c.running()
        for _ in range(RUN_BOUND):
            t = c.running()
            if t is None or t is not first or t.hung:
                return
            if t.runnable(self):
                self.step_task(t)
            elif c.work_pending and c.nested is None:
                drain_local_pages_wq(self, cpu)
            else:
                return

    def runnable_work(self) -> list[int]:
        """CPUs whose pending drain work can run now."""
        return [i for i in range(len(self.cpus)) if self.work_runnable(i)]

    def stuck(self) -> bool:
        """Some task is blocked, and no task and no drain work can run (a task under a
        nested context can run only when that context ends)."""
        tasks = [t for t in (c.running() for c in self.cpus) if t is not None]
        return (
            any(not t.hung for t in tasks)
            and not any(t.runnable(self) for t in tasks)
            and not self.runnable_work()
        )
