"""Checking the invariants after every action at the cost of what changed.

The model marks the parts of the state it writes (``pcpfuzz.dirty``: free lists, free
counters, pcplists, cached migratetypes, allocations, present pages, pageblock types, online
blocks, reported bugs, isolation users). A few scalars the model writes in many places (zone
counters, the owners of the locks some invariants read, whether an allocation was logged) the
checker reads itself and compares with their values at the last check. For each invariant
that has a ``Rule`` here:

- if none of the parts it ``reads`` changed, its last verdict stands;
- if its last verdict was clean and ``holds`` proves that it is still clean, it is clean: from
  what changed in the parts (CONSERVE: the pages that arrived somewhere are the pages that left
  somewhere, found by comparing the changed parts with a copy taken when they last changed),
  or by a lean pass without messages where that is cheaper than finding what changed;
- otherwise it runs in full (``pcpfuzz.invariants``), which also writes the messages.

Invariants without a rule (cheap ones that read tasks and IRQ state) run every time. A rule
must name every part its invariant reads: when an invariant in ``pcpfuzz.invariants`` changes,
its rule here changes with it (``tests/test_incremental_checks.py`` compares the two after
every action of many random walks on every profile, with and without injected corruption, with
``pcpfuzz.dirty``'s verify mode on, which fails on any write the model did not mark).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Final

import attrs

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT
from pcpfuzz.dirty import (
    ALL,
    ALLOC,
    BUGS,
    CACHED,
    FREE,
    FREECOUNT,
    ISO,
    ONLINE,
    PBMT,
    PCP,
    PRESENT,
    Shadow,
    verifying,
)
from pcpfuzz.violation import Violation

if TYPE_CHECKING:
    from pcpfuzz.invariants import Invariant
    from pcpfuzz.profiles import Profile
    from pcpfuzz.system import System

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
READ: Final = ZONE | HOTPLUG | ZONE_LOCKED | PCP_LOCKED | ALLOC_LOG


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


def _multiset_diff(new: list, old: list) -> tuple[list, list]:
    """(added, removed): what list ``new`` holds more of than list ``old``, and less of. The
    common cases (one entry pushed or popped at either end, lists without repeats) avoid
    building counters."""
    n, o = len(new), len(old)
    if n == o + 1 and (new[1:] == old or new[:-1] == old):
        return [new[0] if new[1:] == old else new[-1]], []
    if o == n + 1 and (old[1:] == new or old[:-1] == new):
        return [], [old[0] if old[1:] == new else old[-1]]
    a, b = set(new), set(old)
    if len(a) == n and len(b) == o:
        return list(a - b), list(b - a)
    ca, cb = Counter(new), Counter(old)
    return list((ca - cb).elements()), list((cb - ca).elements())


def _list_diffs(new_lists: Iterable[list], old_lists: Iterable[list]) -> Iterator[tuple]:
    """(index, added, removed) for each pair of lists that differ."""
    for i, (new, old) in enumerate(zip(new_lists, old_lists, strict=True)):
        if new != old:
            yield (i, *_multiset_diff(new, old))


class Copies:
    """The checker's private copies of the parts whose changes the proofs read entry by
    entry: the free lists, the pcplists, the in-flight and allocated blocks. A copy is taken
    when its part is marked; a previous copy is never mutated (a new one shares what did not
    change with it)."""

    __slots__ = ("free", "pcp", "inflight", "allocated")

    def __init__(self, s: System) -> None:
        self.free = [[fl[:] for fl in by_mt] for by_mt in s.zone.free_list]
        self.pcp = [[lst[:] for lst in p.lists] for p in s.pcp]
        self.inflight = dict(s.inflight)
        self.allocated = dict(s.allocated)

    def renewed(self, s: System, dirty: int) -> Copies:
        """A copy of ``s`` for the parts in ``dirty``, this one's for the others."""
        new = Copies.__new__(Copies)
        new.free = self.free
        new.pcp = self.pcp
        new.inflight = self.inflight
        new.allocated = self.allocated
        if dirty & FREE:
            new.free = [
                was if was == by_mt else [fl[:] for fl in by_mt]
                for by_mt, was in zip(s.zone.free_list, self.free, strict=True)
            ]
        if dirty & PCP:
            new.pcp = [[lst[:] for lst in p.lists] for p in s.pcp]
        if dirty & ALLOC:
            new.inflight = dict(s.inflight)
            new.allocated = dict(s.allocated)
        return new


class Delta:
    """What changed since the last check: ``dirty``, the parts marked; ``was_isolating``,
    whether an isolation pass was under way then. The entries that came and went are found by
    comparing the marked parts with ``old`` (cheaply: most actions move a page or two)."""

    def __init__(self, s: System, dirty: int, old: Copies, was_isolating: bool) -> None:
        self.dirty = dirty
        self.was_isolating = was_isolating
        self.free_added: list[tuple[int, int, int]] = []
        """Free-list entries (head, order, mt) that appeared; ``free_removed``: that left."""
        self.free_removed: list[tuple[int, int, int]] = []
        self.pcp_added: list[tuple[int, int]] = []
        """(head, order) of entries put on a pcplist (any CPU, any list); ``pcp_removed``:
        taken off one."""
        self.pcp_removed: list[tuple[int, int]] = []
        self.blocks_added: list[tuple[int, int]] = []
        """Allocated or in-flight (pfn, order) blocks that appeared; ``blocks_removed``: left."""
        self.blocks_removed: list[tuple[int, int]] = []
        if dirty & FREE:
            for order, by_mt, old_by_mt in _list_diffs_nested(s.zone.free_list, old.free):
                for mt, plus, minus in _list_diffs(by_mt, old_by_mt):
                    self.free_added += [(h, order, mt) for h in plus]
                    self.free_removed += [(h, order, mt) for h in minus]
        if dirty & PCP:
            for pcp, old_lists in zip(s.pcp, old.pcp, strict=True):
                for idx, plus, minus in _list_diffs(pcp.lists, old_lists):
                    order = pcp.order_of(idx)
                    self.pcp_added += [(h, order) for h in plus]
                    self.pcp_removed += [(h, order) for h in minus]
        if dirty & ALLOC:
            old_blocks = old.allocated
            blocks = set(zip(s.allocated, map(id, s.allocated.values()), strict=True))
            was = set(zip(old_blocks, map(id, old_blocks.values()), strict=True))
            inflight, was_inflight = set(s.inflight.items()), set(old.inflight.items())
            self.blocks_added = [(pfn, s.allocated[pfn].order) for pfn, _ in blocks - was]
            self.blocks_added += inflight - was_inflight
            self.blocks_removed = [(pfn, old_blocks[pfn].order) for pfn, _ in was - blocks]
            self.blocks_removed += was_inflight - inflight

    def changed(self, parts: int) -> bool:
        """Whether any of ``parts`` was marked."""
        return bool(self.dirty & parts)


def _list_diffs_nested(new: list, old: list) -> Iterator[tuple[int, list, list]]:
    """(order, lists, old lists) for each order whose free lists changed."""
    for order, (by_mt, old_by_mt) in enumerate(zip(new, old, strict=True)):
        if by_mt != old_by_mt:
            yield order, by_mt, old_by_mt


# ---- proofs that a clean invariant is still clean --------------------------------------------


def _covered(blocks: Iterable[tuple], limit: int | None, out: list[int]) -> None:
    """Append the pfns of (head, order, ...) blocks to ``out``, clipped at ``limit``."""
    for head, order, *_ in blocks:
        end = head + (1 << order)
        out += range(head, end if limit is None else min(end, limit))


def conserve_holds(s: System, d: Delta) -> bool:
    """Every page was in exactly one place; it still is if the pages that arrived somewhere
    are exactly the pages that left somewhere (and presence did not change)."""
    if d.changed(PRESENT):
        return False
    n = s.nr_pages
    came: list[int] = []
    went: list[int] = []
    _covered(d.pcp_added, n, came)
    _covered(d.pcp_removed, n, went)
    _covered(d.free_added, n, came)
    _covered(d.free_removed, n, went)
    _covered(d.blocks_added, None, came)
    _covered(d.blocks_removed, None, went)
    if came and (min(came) < 0 or max(came) >= n) or went and (min(went) < 0 or max(went) >= n):
        return False
    came.sort()
    went.sort()
    return came == went


def _free_lists_ok(s: System) -> bool:
    """``check_buddy``'s free-list half, without messages: every entry aligned, in the zone,
    PageBuddy with its order and type, present; nr_free and the PageBuddy count agree."""
    order_of, mt_of, present, n = s.buddy_order, s.buddy_mt, s.page_present, s.nr_pages
    listed = 0
    for order, by_mt in enumerate(s.zone.free_list):
        size = 1 << order
        count = 0
        for mt, fl in enumerate(by_mt):
            count += len(fl)
            for head in fl:
                end = head + size
                if (
                    head & (size - 1)
                    or end > n
                    or order_of[head] != order
                    or mt_of[head] != mt
                    or not all(present[head:end])
                ):
                    return False
        if count != s.zone.nr_free[order]:
            return False
        listed += count
    return min(order_of) >= -1 and len(order_of) - order_of.count(-1) == listed


def _pcp_lists_ok(s: System) -> bool:
    """``check_buddy``'s pcplist half, without messages: counts, and each page on the list of
    its cached migratetype."""
    for pcp in s.pcp:
        orders = [pcp.order_of(idx) for idx in range(len(pcp.lists))]
        n = sum(len(lst) << o for lst, o in zip(pcp.lists, orders, strict=True))
        if n != pcp.count and not pcp.locked():
            return False
        for idx, lst in enumerate(pcp.lists):
            for pfn in lst:
                mt = s.cached_mt[pfn]
                if pcp.pindex(mt if mt < MIGRATE_PCPTYPES else MT.MOVABLE, orders[idx]) != idx:
                    return False
    return True


def buddy_holds(s: System, d: Delta) -> bool:
    """The half of BUDDY whose parts changed is tested again (the free lists are a few dozen
    entries: a lean pass over them is cheaper than finding what changed in them)."""
    if d.changed(PRESENT):
        return False
    return (not d.changed(FREE) or _free_lists_ok(s)) and (
        not d.changed(PCP | CACHED | PCP_LOCKED) or _pcp_lists_ok(s)
    )


def merge_max_holds(s: System, _d: Delta) -> bool:
    """``check_merge_max`` without messages: no free block below the limit has a free buddy
    of its order."""
    limit = min(s.geo.pageblock_order, s.geo.max_order - 1)
    order_of, n = s.buddy_order, s.nr_pages
    for order in range(limit):
        bit = 1 << order
        for fl in s.zone.free_list[order]:
            for head in fl:
                buddy = head ^ bit
                if head < buddy < n and order_of[buddy] == order:
                    return False
    return True


def fl_type_holds(s: System, d: Delta) -> bool:
    """With pageblock types unchanged and no isolation pass then or now, only new entries can
    sit on the wrong list."""
    if s.isolation_passes or d.was_isolating or d.changed(PBMT):
        return False
    pbo = s.geo.pageblock_order
    special = (MT.ISOLATE, MT.CMA)
    for head, order, mt in d.free_added:
        first = head >> pbo
        last = first + max(1, 1 << order >> pbo)
        if last > len(s.pageblock_mt):
            return False
        pbs = set(s.pageblock_mt[first:last])
        for sp in special:
            if (mt == sp) != (pbs == {sp}):
                return False
    return True


def freecount_holds(s: System, _d: Delta) -> bool:
    """NR_FREE_PAGES and NR_FREE_CMA_PAGES, recomputed from the list lengths."""
    free = cma = 0
    for order, by_mt in enumerate(s.zone.free_list):
        free += (sum(map(len, by_mt)) - len(by_mt[MT.ISOLATE])) << order
        cma += len(by_mt[MT.CMA]) << order
    return free + s.known_free_drift == s.zone.nr_free_pages and cma == s.zone.nr_free_cma_pages


def iso_count_holds(s: System, _d: Delta) -> bool:
    """No pageblock is ISOLATE and the counter is zero (or hotplug is under way)."""
    return MT.ISOLATE not in s.pageblock_mt and (
        s.mem_hotplug_lock.owner is not None or s.zone.nr_isolate_pageblock == s.known_isolate_drift
    )


@attrs.frozen
class Rule:
    """How to check an invariant incrementally: the parts it reads (a mask of
    ``pcpfuzz.dirty`` parts and the scalars above), and optionally a proof that a clean verdict
    still holds after a change."""

    reads: int
    holds: Callable[[System, Delta], bool] | None = None


def nothing_stuck(s: System) -> bool:
    """No task, or a task that waits for nothing: something can run (DEADLOCK holds)."""
    tasks = [c.task for c in s.cpus if c.task is not None]
    return not tasks or any(t.wait is None and not t.hung for t in tasks)


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
    "NO-ALLOC-OFFLINED": Rule(BUGS | ALLOC_LOG | PCP | PRESENT),
    "CONSERVE": Rule(FREE | PCP | ALLOC | PRESENT, conserve_holds),
    "BUDDY": Rule(FREE | PCP | PCP_LOCKED | CACHED | PRESENT, buddy_holds),
    "MERGE-MAX": Rule(FREE, merge_max_holds),
    "FL-TYPE": Rule(FREE | PBMT | ZONE, fl_type_holds),
    "FL-TYPE-STRICT": Rule(FREE | PBMT | ZONE_LOCKED),
    "FREECOUNT": Rule(FREE | FREECOUNT, freecount_holds),
    "ISO-COUNT": Rule(PBMT | ONLINE | ZONE | HOTPLUG, iso_count_holds),
    "NO-ISO-ON-PCP-TYPE": Rule(PCP | CACHED),
    "MANAGED": Rule(PRESENT | ZONE | HOTPLUG),
}


# ---- the checker -----------------------------------------------------------------------------


class _Memo:
    """One system's invariants (full check, rule or None, quick or None, in ``check`` order),
    the copies of its parts and scalars at the last check, the last verdict of each ruled
    invariant, and whether all those verdicts are clean."""

    __slots__ = (
        "checks",
        "always",
        "reads",
        "copies",
        "zone",
        "hotplug",
        "zone_locked",
        "pcp_locked",
        "logged",
        "verdicts",
        "clean",
        "shadow",
    )

    def __init__(self, s: System, invariants: Iterable[Invariant]) -> None:
        self.checks = [(inv.check, RULES.get(inv.name), QUICK.get(inv.name)) for inv in invariants]
        self.always = [(full, quick) for full, rule, quick in self.checks if rule is None]
        self.reads = 0
        """Every part some ruled invariant reads."""
        for _full, rule, _quick in self.checks:
            self.reads |= 0 if rule is None else rule.reads
        self.copies = Copies(s)
        self.zone = _zone_scalars(s)
        self.hotplug = s.mem_hotplug_lock.owner
        self.zone_locked = s.zone_lock.owner is not None
        self.pcp_locked = [p.locked() for p in s.pcp]
        self.logged = False
        self.verdicts: list[list[Violation] | None] = [None] * len(self.checks)
        self.clean = False
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
        if s.alloc_log or self.logged:
            changed |= ALLOC_LOG
            self.logged = bool(s.alloc_log)
        return changed


_MEMOS: weakref.WeakKeyDictionary[System, _Memo] = weakref.WeakKeyDictionary()


def incremental_check(
    s: System, applicable: Callable[[Profile], Iterable[Invariant]]
) -> list[Violation]:
    """The violations of the ``applicable`` invariants of ``s``'s profile, as their full checks
    would report them."""
    memo = _MEMOS.get(s)
    if memo is None:
        memo = _MEMOS[s] = _Memo(s, applicable(s.profile))
        dirty, was_isolating = ALL | READ, True
    else:
        was_isolating = memo.zone[0] > 0
        dirty = s.dirty | memo.read(s)
        if memo.shadow is not None:
            memo.shadow.verify(s, dirty)
    s.dirty = 0
    out: list[Violation] = []
    if not dirty & memo.reads and memo.clean:
        # Nothing a ruled invariant reads changed, and all of them held: only the others run
        # (in order; the ruled ones would add nothing).
        for full, quick in memo.always:
            if quick is None or not quick(s):
                out += full(s)
        return out
    old = memo.copies
    memo.copies = old.renewed(s, dirty)
    verdicts = memo.verdicts
    delta: Delta | None = None
    clean = True
    for i, (full, rule, quick) in enumerate(memo.checks):
        if rule is None:
            verdict = [] if quick is not None and quick(s) else full(s)
        else:
            verdict = verdicts[i]
            if verdict is None or dirty & rule.reads:
                if verdict == [] and rule.holds is not None:
                    if delta is None:
                        delta = Delta(s, dirty, old, was_isolating)
                    if not rule.holds(s, delta):
                        verdict = full(s)
                else:
                    verdict = full(s)
                verdicts[i] = verdict
            clean = clean and not verdict
        if verdict:
            out += verdict
    memo.clean = clean
    return out
