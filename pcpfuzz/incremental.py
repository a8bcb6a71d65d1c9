"""Checking the invariants after every action at the cost of what changed.

The model marks the parts of the state it writes and journals the blocks it moves
(``pcpfuzz.dirty``: free lists, free counters, pcplists, cached migratetypes, allocations,
present pages, pageblock types, online blocks, reported bugs, isolation users). A few scalars
the model writes in many places (zone counters, the owners of the locks some invariants read,
whether pcplists are disabled, whether an allocation was logged) the checker reads itself and
compares with their values at the last check. For each invariant that has a ``Rule`` here:

- if none of the parts it ``reads`` changed (and its ``steady`` condition held when it was
  last checked), its last verdict stands;
- if its last verdict was clean and ``holds`` proves that it is still clean, it is clean: from
  the journals (CONSERVE: the pages that arrived somewhere are the pages that left somewhere;
  FREECOUNT: the counters moved as the lists did; FL-TYPE: the new free entries are on the
  right lists), or by a lean pass without messages;
- otherwise it runs in full (``pcpfuzz.invariants``), which also writes the messages.

Invariants without a rule (DEADLOCK, behind a cheap sufficient test; PCP-BOUNDED) run every
time. A rule
must name every part its invariant reads: when an invariant in ``pcpfuzz.invariants`` changes,
its rule here changes with it (``tests/test_incremental_checks.py`` compares the two after
every action of many random walks on every profile, with and without injected corruption, with
``pcpfuzz.dirty``'s verify mode on, which fails on any write the model did not mark).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final

import attrs

from pcpfuzz.constants import MIGRATE_PCPTYPES, MIGRATE_TYPES, MT
from pcpfuzz.dirty import (
    ALL,
    ALLOC,
    BUGS,
    CACHED,
    FREE,
    FREECOUNT,
    ISO,
    ONLINE,
    OPAQUE,
    PBMT,
    PCP,
    PRESENT,
    SIZING,
    Shadow,
    verifying,
)
from pcpfuzz.invariants612 import sizing_under_update
from pcpfuzz.violation import Violation

if TYPE_CHECKING:
    from pcpfuzz.invariants import Invariant
    from pcpfuzz.profiles import Profile
    from pcpfuzz.system import System

_ISOLATE: Final = int(MT.ISOLATE)
_CMA: Final = int(MT.CMA)
_MOVABLE: Final = int(MT.MOVABLE)

# ---- what the checker reads itself -----------------------------------------------------------

ZONE: Final = 1 << 16
"""Zone scalars: isolation passes, nr_isolate_pageblock and its known drift, managed and
present pages."""
HOTPLUG: Final = 1 << 17
"""The owner of ``mem_hotplug_lock``."""
ZONE_LOCKED: Final = 1 << 18
"""Whether ``zone->lock`` is held across steps (v6.x)."""
PCP_LOCKED: Final = 1 << 19
"""Which pagesets' ``pcp->lock`` is held across steps (v6.x)."""
ALLOC_LOG: Final = 1 << 20
"""The allocations logged by the last action (``System.alloc_log``)."""
PCP_OFF: Final = 1 << 21
"""Whether pcplists are disabled (``System.pcp_disabled``)."""
CPUS: Final = 1 << 22
"""Which CPUs are online (v6.x sizing splits high over them)."""
READ: Final = ZONE | HOTPLUG | ZONE_LOCKED | PCP_LOCKED | ALLOC_LOG | PCP_OFF | CPUS


def _zone_scalars(s: System) -> tuple[int, int, int, int, int]:
    z = s.zone
    return (
        s.isolation_passes,
        z.nr_isolate_pageblock,
        s.known_isolate_drift,
        z.managed_pages,
        z.present_pages,
    )


# ---- what changed ----------------------------------------------------------------------------


class Delta:
    """What changed since the last check: ``dirty``, the parts marked; ``was_isolating``,
    whether an isolation pass was under way then; ``counters``, the free counters then; the
    system's journals of the blocks that moved (``pcpfuzz.dirty``), complete unless ``OPAQUE``
    is marked; and the lean passes over the lists, run once when a proof first asks."""

    __slots__ = ("s", "dirty", "was_isolating", "counters", "layout", "_free_scan", "_pcp_scan")

    def __init__(
        self,
        s: System,
        dirty: int,
        was_isolating: bool,
        counters: tuple[int, int, int],
        layout: PcpLayout,
    ) -> None:
        self.s = s
        self.dirty = dirty
        self.was_isolating = was_isolating
        self.counters = counters
        self.layout = layout
        self._free_scan: tuple[bool, bool] | None = None
        self._pcp_scan: tuple[bool, bool] | None = None

    def changed(self, parts: int) -> bool:
        """Whether any of ``parts`` was marked."""
        return bool(self.dirty & parts)

    def free_scan(self) -> tuple[bool, bool]:
        """``free_scan`` of the system, run once."""
        if self._free_scan is None:
            self._free_scan = free_scan(self.s)
        return self._free_scan

    def pcp_scan(self) -> tuple[bool, bool]:
        """``pcp_scan`` of the system, run once."""
        if self._pcp_scan is None:
            self._pcp_scan = pcp_scan(self.s, self.layout)
        return self._pcp_scan


# ---- proofs that a clean invariant is still clean --------------------------------------------


def conserve_holds(s: System, d: Delta) -> bool:
    """Every page was in exactly one place; it still is if the pages that arrived somewhere
    are exactly the pages that left somewhere, by the journals (and presence did not change;
    a page outside the zone is left to the full check)."""
    if d.changed(PRESENT | OPAQUE):
        return False
    came: list[int] = []
    went: list[int] = []
    for head, order, _mt, sign in s.free_journal:
        (came if sign > 0 else went).extend(range(head, head + (1 << order)))
    for head, order, sign in s.page_journal:
        (came if sign > 0 else went).extend(range(head, head + (1 << order)))
    if not came and not went:
        return True
    came.sort()
    went.sort()
    return came == went and (not came or came[0] >= 0 and came[-1] < s.nr_pages)


def free_scan(s: System) -> tuple[bool, bool]:
    """One lean pass over the free lists, without messages: (``check_buddy``'s free-list half
    holds: every entry aligned, in the zone, PageBuddy with its order and type, present;
    nr_free and the PageBuddy count agree) and (``check_merge_max`` holds: no free block below
    the limit has a free buddy of its order)."""
    order_of, mt_of, present, n = s.buddy_order, s.buddy_mt, s.page_present, s.nr_pages
    limit = min(s.geo.pageblock_order, s.geo.max_order - 1)
    nr_free = s.zone.nr_free
    buddy_ok = merge_ok = True
    listed = 0
    for order, by_mt in enumerate(s.zone.free_list):
        size = 1 << order
        mask = size - 1
        merges = order < limit
        count = 0
        for mt, fl in enumerate(by_mt):
            count += len(fl)
            for head in fl:
                end = head + size
                if buddy_ok and (
                    head & mask
                    or end > n
                    or order_of[head] != order
                    or mt_of[head] != mt
                    or not all(present[head:end])
                ):
                    buddy_ok = False
                if merges and merge_ok:
                    buddy = head ^ size
                    if head < buddy < n and order_of[buddy] == order:
                        merge_ok = False
        if count != nr_free[order]:
            buddy_ok = False
        listed += count
    if buddy_ok:
        buddy_ok = min(order_of) >= -1 and len(order_of) - order_of.count(-1) == listed
    return buddy_ok, merge_ok


@attrs.frozen
class PcpLayout:
    """The pcplists of a system's pagesets: each list's order, and the cached migratetypes a
    page on it may have (``pindex`` of the type, ISOLATE and CMA counted as MOVABLE)."""

    orders: tuple[int, ...]
    allowed: tuple[frozenset[int], ...]
    order0: bool
    """Every list holds order-0 pages (5.x)."""


def pcp_layout(s: System) -> PcpLayout:
    """The layout of ``s``'s pagesets (every CPU's has the same)."""
    pcp = s.pcp[0]
    orders = tuple(pcp.order_of(idx) for idx in range(len(pcp.lists)))
    allowed = tuple(
        frozenset(
            mt
            for mt in range(MIGRATE_TYPES)
            if pcp.pindex(mt if mt < MIGRATE_PCPTYPES else _MOVABLE, order) == idx
        )
        for idx, order in enumerate(orders)
    )
    return PcpLayout(orders, allowed, not any(orders))


def pcp_scan(s: System, layout: PcpLayout) -> tuple[bool, bool]:
    """One lean pass over the pcplists, without messages: (``check_buddy``'s pcplist half
    holds: counts, and each page on the list of its cached migratetype) and (no pcp page has
    cached migratetype ISOLATE)."""
    get = s.cached_mt.__getitem__
    lists_ok = no_isolate = True
    for pcp in s.pcp:
        lists = pcp.lists
        if layout.order0:
            held = sum(map(len, lists))
        else:
            held = sum([len(lst) << o for lst, o in zip(lists, layout.orders, strict=True)])
        if held != pcp.count and not pcp.locked():
            lists_ok = False
        for lst, allowed in zip(lists, layout.allowed, strict=True):
            if lst:
                types = set(map(get, lst))
                if _ISOLATE in types:
                    no_isolate = False
                if not types <= allowed:
                    lists_ok = False
    return lists_ok, no_isolate


def buddy_holds(s: System, d: Delta) -> bool:
    """The half of BUDDY whose parts changed is tested again (the lists are a few dozen
    entries: a lean pass over them is cheaper than finding what changed in them)."""
    if d.changed(PRESENT):
        return False
    return (not d.changed(FREE) or d.free_scan()[0]) and (
        not d.changed(PCP | CACHED | PCP_LOCKED) or d.pcp_scan()[0]
    )


def merge_max_holds(_s: System, d: Delta) -> bool:
    """``check_merge_max`` by the lean pass."""
    return d.free_scan()[1]


def no_iso_on_pcp_type_holds(_s: System, d: Delta) -> bool:
    """``check_no_iso_on_pcp_type`` by the lean pass."""
    return d.pcp_scan()[1]


def _on_right_list(pbmt: list[int], pbo: int, head: int, order: int, mt: int) -> bool | None:
    """FL-TYPE for one free block: ISOLATE and CMA blocks on their pageblocks' lists and no
    other; None for a block past the last pageblock (the full check reports it)."""
    first = head >> pbo
    if order <= pbo:
        if first >= len(pbmt):
            return None
        pb = pbmt[first]
        return (mt == _ISOLATE) == (pb == _ISOLATE) and (mt == _CMA) == (pb == _CMA)
    last = first + (1 << order >> pbo)
    if last > len(pbmt):
        return None
    pbs = set(pbmt[first:last])
    return (mt == _ISOLATE) == (pbs == {_ISOLATE}) and (mt == _CMA) == (pbs == {_CMA})


def fl_type_holds(s: System, d: Delta) -> bool:
    """Vacuous inside an isolation pass. With pageblock types unchanged and no isolation pass
    at the last check, only the entries the free journal added can sit on the wrong list;
    otherwise every entry is tested again (a lean pass)."""
    if s.isolation_passes:
        return True
    pbmt, pbo = s.pageblock_mt, s.geo.pageblock_order
    if d.was_isolating or d.changed(PBMT | OPAQUE):
        return all(
            _on_right_list(pbmt, pbo, head, order, mt)
            for order, by_mt in enumerate(s.zone.free_list)
            for mt, fl in enumerate(by_mt)
            for head in fl
        )
    return all(
        _on_right_list(pbmt, pbo, head, order, mt)
        for head, order, mt, sign in s.free_journal
        if sign > 0
    )


def freecount_holds(s: System, d: Delta) -> bool:
    """NR_FREE_PAGES and NR_FREE_CMA_PAGES held at the last check; they still do if each
    counter moved by what the free journal says the lists gained (outside ISOLATE lists; on
    CMA lists)."""
    if d.changed(OPAQUE):
        return False
    free = cma = 0
    for _head, order, mt, sign in s.free_journal:
        if mt != _ISOLATE:
            free += sign << order
        if mt == _CMA:
            cma += sign << order
    nr_free, nr_cma, drift = d.counters
    z = s.zone
    return (
        free + s.known_free_drift - drift == z.nr_free_pages - nr_free
        and cma == z.nr_free_cma_pages - nr_cma
    )


def iso_count_holds(s: System, _d: Delta) -> bool:
    """No pageblock is ISOLATE and the counter is zero (or hotplug is under way)."""
    return _ISOLATE not in s.pageblock_mt and (
        s.mem_hotplug_lock.owner is not None or s.zone.nr_isolate_pageblock == s.known_isolate_drift
    )


Check = Callable[["System"], list[Violation]]
Proof = Callable[["System", Delta], bool]
Ruled = tuple[int, int, Check, "Proof | None", "Callable[[System], bool] | None"]
"""A ruled invariant: its index in ``check`` order, what it reads, its full check, its proof
and its steady condition."""


@attrs.frozen
class Rule:
    """How to check an invariant incrementally: the parts it reads (a mask of
    ``pcpfuzz.dirty`` parts and the scalars above), optionally a proof that a clean verdict
    still holds after a change, and optionally the condition (``steady``, tested on the state
    its verdict was computed on) under which the verdict depends on those parts alone; while
    it fails, the invariant runs at every check."""

    reads: int
    holds: Proof | None = None
    steady: Callable[[System], bool] | None = None


def nothing_stuck(s: System) -> bool:
    """No task, or a task or drain work that can run: DEADLOCK holds (``System.stuck`` is
    false; a task under a nested context runs only when that context ends)."""
    idle = True
    for c in s.cpus:
        t = c.running()
        if t is not None:
            if not t.hung and (t.wait is None or t.wait.ready(s)):
                return True
            idle = False
    return idle or bool(s.runnable_work())


def _no_isolation_user(s: System) -> bool:
    """ISO-PCP reads the CPUs' IRQ state only for an isolation user's range."""
    return not s.iso_users


def _pcp_enabled(s: System) -> bool:
    """PCP-OFF reads the CPUs and their IRQ state only while pcplists are disabled."""
    return not s.pcp_disabled


def _sizing_settled(s: System) -> bool:
    """PCP-HB reads the tasks, the locks and the online CPUs only while the sizing may lag
    (``sizing_under_update``), pcplists are disabled or the zone is unpopulated; otherwise
    its verdict follows from the sizing fields, the managed pages and the fraction."""
    return not (s.pcp_disabled or sizing_under_update(s))


def unheld_isolated(s: System) -> list[int]:
    """The online pageblocks that are ISOLATE and that no isolation user holds (ISO-REST)."""
    pbmt = s.pageblock_mt
    if _ISOLATE not in pbmt:
        return []
    bp = s.geo.block_pages
    pbn = s.geo.pageblock_nr_pages
    return [
        pb
        for pb, mt in enumerate(pbmt)
        if mt == _ISOLATE
        and s.block_online[pb * pbn // bp]
        and not any(u.start <= pb * pbn < u.end for u in s.iso_users)
    ]


def _none_left_isolated(s: System) -> bool:
    """ISO-REST reads the tasks only when an online pageblock is left ISOLATE unheld."""
    return not unheld_isolated(s)


QUICK: dict[str, Callable[[System], bool]] = {"DEADLOCK": nothing_stuck}
"""For invariants without a rule: a cheap sufficient condition, on the state alone, for the
invariant to hold; the full check runs only when it fails."""


RULES: dict[str, Rule] = {
    "HANG": Rule(BUGS),
    "LOCK-ORDER": Rule(BUGS),
    "DRAIN-LOCKED": Rule(BUGS),
    "PCP-UAF": Rule(BUGS),
    "TYPE-WARN": Rule(BUGS),
    "ISO-NO-ALLOC": Rule(ALLOC_LOG | ISO),
    "ISO-PCP": Rule(ISO | PCP, steady=_no_isolation_user),
    "PCP-OFF": Rule(PCP | PCP_OFF, steady=_pcp_enabled),
    "ISO-REST": Rule(PBMT | ONLINE | ISO, steady=_none_left_isolated),
    "NO-ALLOC-OFFLINED": Rule(BUGS | ALLOC_LOG | PCP | PRESENT),
    "CONSERVE": Rule(FREE | PCP | ALLOC | PRESENT, conserve_holds),
    "BUDDY": Rule(FREE | PCP | PCP_LOCKED | CACHED | PRESENT, buddy_holds),
    "MERGE-MAX": Rule(FREE, merge_max_holds),
    "FL-TYPE": Rule(FREE | PBMT | ZONE, fl_type_holds),
    "FL-TYPE-STRICT": Rule(FREE | PBMT | ZONE_LOCKED),
    "FREECOUNT": Rule(FREE | FREECOUNT, freecount_holds),
    "ISO-COUNT": Rule(PBMT | ONLINE | ZONE | HOTPLUG, iso_count_holds),
    "NO-ISO-ON-PCP-TYPE": Rule(PCP | CACHED, no_iso_on_pcp_type_holds),
    "MANAGED": Rule(PRESENT | ZONE | HOTPLUG),
    "PCP-HB": Rule(SIZING | ZONE | PCP_OFF | CPUS, steady=_sizing_settled),
}


# ---- the checker -----------------------------------------------------------------------------


class Memo:
    """One system's invariants in ``check`` order (full check, rule or None, quick or None),
    the ruled ones with their index, the scalars at the last check, the last verdict of each
    ruled invariant, and those that are violations or volatile."""

    __slots__ = (
        "checks",
        "ruled",
        "always",
        "reads",
        "zone",
        "counters",
        "layout",
        "hotplug",
        "zone_locked",
        "pcp_locked",
        "pcp_off",
        "online",
        "logged",
        "plans",
        "verdicts",
        "unclean",
        "volatile",
        "shadow",
    )

    def __init__(self, s: System, invariants: Iterable[Invariant]) -> None:
        self.checks = [(inv.check, RULES.get(inv.name), QUICK.get(inv.name)) for inv in invariants]
        self.ruled = [
            (i, rule.reads, full, rule.holds, rule.steady)
            for i, (full, rule, _quick) in enumerate(self.checks)
            if rule is not None
        ]
        self.always = [(full, quick) for full, rule, quick in self.checks if rule is None]
        self.reads = 0
        """Every part some ruled invariant reads."""
        for _i, reads, _full, _holds, _steady in self.ruled:
            self.reads |= reads
        self.zone = _zone_scalars(s)
        self.counters = _free_counters(s)
        self.layout = pcp_layout(s)
        self.hotplug = s.mem_hotplug_lock.owner
        self.zone_locked = s.zone_lock.owner is not None
        self.pcp_locked = [p.locked() for p in s.pcp]
        self.pcp_off = s.pcp_disabled
        self.online = [c.online for c in s.cpus]
        self.logged = False
        self.plans: dict[int, list[Ruled]] = {}
        """The ruled invariants that read a part, by the mask of parts that changed."""
        self.verdicts: list[list[Violation] | None] = [None] * len(self.checks)
        self.unclean: set[int] = set()
        """The ruled invariants whose verdict is a violation."""
        self.volatile: dict[int, Ruled] = {}
        """The ruled invariants whose ``steady`` condition failed at their last check."""
        self.shadow = Shadow(s) if verifying() else None

    def read(self, s: System) -> int:
        """The scalars the checker reads itself that changed since the last check (renewed)."""
        changed = 0
        zone = _zone_scalars(s)
        if zone != self.zone:
            changed |= ZONE
            self.zone = zone
        if s.mem_hotplug_lock.owner != self.hotplug:
            changed |= HOTPLUG
            self.hotplug = s.mem_hotplug_lock.owner
        if (s.zone_lock.owner is not None) != self.zone_locked:
            changed |= ZONE_LOCKED
            self.zone_locked = not self.zone_locked
        if s.profile.pcp_spinlock:
            locked = [p.locked() for p in s.pcp]
            if locked != self.pcp_locked:
                changed |= PCP_LOCKED
                self.pcp_locked = locked
        if s.pcp_disabled != self.pcp_off:
            changed |= PCP_OFF
            self.pcp_off = s.pcp_disabled
        online = [c.online for c in s.cpus]
        if online != self.online:
            changed |= CPUS
            self.online = online
        if s.alloc_log or self.logged:
            changed |= ALLOC_LOG
            self.logged = bool(s.alloc_log)
        return changed

    def update(self, s: System, dirty: int, was_isolating: bool) -> None:
        """Renew the verdicts of the ruled invariants that read a part in ``dirty``."""
        counters = self.counters
        mask = dirty & self.reads
        if dirty & FREECOUNT:
            self.counters = _free_counters(s)
        plan = self.plans.get(mask)
        if plan is None:
            plan = self.plans[mask] = [r for r in self.ruled if dirty & r[1]]
        volatile = self.volatile
        if volatile:
            plan = plan + [r for r in volatile.values() if not dirty & r[1]]
        verdicts = self.verdicts
        unclean = self.unclean
        delta: Delta | None = None
        for entry in plan:
            i, _reads, full, holds, steady = entry
            verdict = verdicts[i]
            if verdict is not None and not verdict and holds is not None and i not in volatile:
                if delta is None:
                    delta = Delta(s, dirty, was_isolating, counters, self.layout)
                if not holds(s, delta):
                    verdict = full(s)
            else:
                verdict = full(s)
            verdicts[i] = verdict
            if verdict:
                unclean.add(i)
            else:
                unclean.discard(i)
            if steady is not None:
                if steady(s):
                    volatile.pop(i, None)
                else:
                    volatile[i] = entry


def _free_counters(s: System) -> tuple[int, int, int]:
    return (s.zone.nr_free_pages, s.zone.nr_free_cma_pages, s.known_free_drift)


def incremental_check(
    s: System, applicable: Callable[[Profile], Iterable[Invariant]]
) -> list[Violation]:
    """The violations of the ``applicable`` invariants of ``s``'s profile, as their full checks
    would report them."""
    memo = s.check_memo
    if memo is None:
        memo = s.check_memo = Memo(s, applicable(s.profile))
        dirty, was_isolating = ALL | READ, True
    else:
        was_isolating = memo.zone[0] > 0
        dirty = s.dirty | memo.read(s)
        if memo.shadow is not None:
            memo.shadow.verify(s, dirty)
    s.dirty = 0
    if dirty & memo.reads or memo.volatile:
        memo.update(s, dirty, was_isolating)
    if s.free_journal:
        s.free_journal.clear()
    if s.page_journal:
        s.page_journal.clear()
    out: list[Violation] = []
    if not memo.unclean:
        # Every ruled invariant holds: only the others run (in order).
        for full, quick in memo.always:
            if quick is None or not quick(s):
                out += full(s)
        return out
    verdicts = memo.verdicts
    for i, (full, rule, quick) in enumerate(memo.checks):
        if rule is not None:
            verdict = verdicts[i]
            assert verdict is not None
            out += verdict
        elif quick is None or not quick(s):
            out += full(s)
    return out
