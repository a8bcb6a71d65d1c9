"""Checking the invariants after every action at the cost of what changed.

The state is cut into *parts* (free lists, pcplists, cached migratetypes, allocations, page
layout, zone scalars). At each ``check`` every part is compared with a private copy taken when
it last changed: comparing lists of integers runs in C, so "nothing changed" costs a few
microseconds, and no model code has to report its writes (a write the model forgets to report
cannot make a verdict stale). For each invariant that has a ``Rule`` here:

- if none of the parts it ``reads`` changed, its last verdict stands;
- if its last verdict was clean and ``holds`` proves that it is still clean, it is clean: from
  the difference between the copies and the state (CONSERVE: the pages that arrived somewhere
  are the pages that left somewhere), or by a lean pass without messages where that is cheaper
  than finding what changed (the free lists hold a few dozen entries);
- otherwise it runs in full (``pcpfuzz.invariants``), which also writes the messages.

Invariants without a rule (the cheap ones that read tasks and locks) run every time. A rule
must name every part its invariant reads: when an invariant in ``pcpfuzz.invariants`` changes,
its rule here changes with it (``tests/test_incremental_checks.py`` compares the two after
every action of many random walks, with and without injected corruption).
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT
from pcpfuzz.violation import Violation

if TYPE_CHECKING:
    from pcpfuzz.invariants import Invariant
    from pcpfuzz.profiles import Profile
    from pcpfuzz.system import System

# ---- parts of the state ----------------------------------------------------------------------


@attrs.frozen
class Part:
    """A part of the state: ``view`` returns live references; ``copy(view, previous)`` a
    private copy of a view (it may share what did not change with the previous copy, which is
    never mutated). A view equals its copy until the state changes."""

    view: Callable[[System], tuple]
    copy: Callable[[tuple, tuple | None], tuple]


def _same_or_copy(lst: list, prev: list | None) -> list:
    return prev if prev is not None and prev == lst else lst[:]


def _free_view(s: System) -> tuple:
    z = s.zone
    return (z.free_list, z.nr_free, s.buddy_order, s.buddy_mt, z.nr_free_pages, z.nr_free_cma_pages)


def _free_copy(v: tuple, prev: tuple | None) -> tuple:
    free_list, nr_free, order, mt, nr_free_pages, nr_free_cma = v
    if prev is None:
        lists = [[fl[:] for fl in by_mt] for by_mt in free_list]
        return (lists, nr_free[:], order[:], mt[:], nr_free_pages, nr_free_cma)
    lists = [
        was if was == by_mt else [fl[:] for fl in by_mt]
        for by_mt, was in zip(free_list, prev[0], strict=True)
    ]
    return (
        lists,
        nr_free[:],
        _same_or_copy(order, prev[2]),
        _same_or_copy(mt, prev[3]),
        nr_free_pages,
        nr_free_cma,
    )


def _pcp_view(s: System) -> tuple:
    return ([p.lists for p in s.pcp], [p.count for p in s.pcp], [p.locked() for p in s.pcp])


def _pcp_copy(v: tuple, _prev: tuple | None) -> tuple:
    lists, counts, locked = v
    return ([[lst[:] for lst in by_mt] for by_mt in lists], counts, locked)


def _cached_view(s: System) -> tuple:
    return (s.cached_mt,)


def _cached_copy(v: tuple, _prev: tuple | None) -> tuple:
    return (v[0][:],)


def _alloc_view(s: System) -> tuple:
    return (s.inflight, s.allocated)


def _alloc_copy(v: tuple, _prev: tuple | None) -> tuple:
    inflight, allocated = v
    return (dict(inflight), dict(allocated))


def _pages_view(s: System) -> tuple:
    return (s.page_present, s.pageblock_mt, s.block_online)


def _pages_copy(v: tuple, _prev: tuple | None) -> tuple:
    return tuple(lst[:] for lst in v)


def _zone_view(s: System) -> tuple:
    z = s.zone
    return (
        s.isolation_passes,
        z.nr_isolate_pageblock,
        s.known_free_drift,
        s.known_isolate_drift,
        z.managed_pages,
        z.present_pages,
        s.mem_hotplug_lock.owner,
    )


PARTS: dict[str, Part] = {
    "free": Part(_free_view, _free_copy),
    "pcp": Part(_pcp_view, _pcp_copy),
    "cached": Part(_cached_view, _cached_copy),
    "alloc": Part(_alloc_view, _alloc_copy),
    "pages": Part(_pages_view, _pages_copy),
    "zone": Part(_zone_view, lambda v, _prev: v),
}
"""``free``: buddy free lists, PageBuddy order and type, free counters. ``pcp``: pcplists and
their counts (not high/batch: no ruled invariant reads them). ``cached``: the migratetype each
page cached when it was freed or allocated. ``alloc``: in-flight blocks and allocated blocks (a
block's order is fixed when it is allocated; a new allocation is a new ``AllocBlock``, so the
copy keeps the block objects). ``pages``: present pages, pageblock types, online blocks.
``zone``: isolation passes, nr_isolate_pageblock, managed/present pages, the hotplug lock."""


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


class Delta:
    """What changed since the copies were taken: ``old`` holds the previous copy of each
    changed part. The entries that came and went are computed at
    once (cheaply: most actions move a page or two); the rest on demand."""

    def __init__(self, s: System, old: dict[str, Any]) -> None:
        self.s = s
        self.old = old
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
        if "free" in old:
            old_lists = old["free"][0]
            for order, by_mt, old_by_mt in _list_diffs_nested(s.zone.free_list, old_lists):
                for mt, plus, minus in _list_diffs(by_mt, old_by_mt):
                    self.free_added += [(h, order, mt) for h in plus]
                    self.free_removed += [(h, order, mt) for h in minus]
        if "pcp" in old:
            for lists, old_lists in zip(s.pcp, old["pcp"][0], strict=True):
                for idx, plus, minus in _list_diffs(lists.lists, old_lists):
                    order = lists.order_of(idx)
                    self.pcp_added += [(h, order) for h in plus]
                    self.pcp_removed += [(h, order) for h in minus]
        if "alloc" in old:
            old_inflight, old_blocks = old["alloc"]
            blocks = set(zip(s.allocated, map(id, s.allocated.values()), strict=True))
            was = set(zip(old_blocks, map(id, old_blocks.values()), strict=True))
            inflight, was_inflight = set(s.inflight.items()), set(old_inflight.items())
            self.blocks_added = [(pfn, s.allocated[pfn].order) for pfn, _ in blocks - was]
            self.blocks_added += inflight - was_inflight
            self.blocks_removed = [(pfn, old_blocks[pfn].order) for pfn, _ in was - blocks]
            self.blocks_removed += was_inflight - inflight

    def changed(self, part: str) -> bool:
        return part in self.old

    def pages_changed(self, index: int) -> bool:
        """Whether ``pages`` field ``index`` (0 present, 1 pageblock types, 2 online) changed."""
        return self.changed("pages") and self.old["pages"][index] != _pages_view(self.s)[index]


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
    if d.pages_changed(0):
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
    if d.pages_changed(0):
        return False
    return (not d.changed("free") or _free_lists_ok(s)) and (
        not (d.changed("pcp") or d.changed("cached")) or _pcp_lists_ok(s)
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
    if s.isolation_passes or (d.changed("zone") and d.old["zone"][0]) or d.pages_changed(1):
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
    """How to check an invariant incrementally: the parts it reads, and optionally a proof
    that a clean verdict still holds after a change."""

    reads: frozenset[str]
    holds: Callable[[System, Delta], bool] | None = None


def _rule(*reads: str, holds: Callable[[System, Delta], bool] | None = None) -> Rule:
    return Rule(frozenset(reads), holds)


def nothing_stuck(s: System) -> bool:
    """No task, or a task that waits for nothing: something can run (DEADLOCK holds)."""
    tasks = [t for t in (c.running() for c in s.cpus) if t is not None]
    return not tasks or any(t.wait is None and not t.hung for t in tasks)


QUICK: dict[str, Callable[[System], bool]] = {"DEADLOCK": nothing_stuck}
"""For invariants without a rule: a cheap sufficient condition, on the state alone, for the
invariant to hold; the full check runs only when it fails."""


RULES: dict[str, Rule] = {
    "CONSERVE": _rule("free", "pcp", "alloc", "pages", holds=conserve_holds),
    "BUDDY": _rule("free", "pcp", "cached", "pages", holds=buddy_holds),
    "MERGE-MAX": _rule("free", holds=merge_max_holds),
    "FL-TYPE": _rule("free", "pages", "zone", holds=fl_type_holds),
    "FREECOUNT": _rule("free", "zone", holds=freecount_holds),
    "ISO-COUNT": _rule("pages", "zone", holds=iso_count_holds),
    "NO-ISO-ON-PCP-TYPE": _rule("pcp", "cached"),
    "MANAGED": _rule("pages", "zone"),
}


# ---- the checker -----------------------------------------------------------------------------


class _Memo:
    """One system's invariants (name, full check, rule or None), the copies of its parts, the
    last verdict of each ruled invariant, and whether all those verdicts are clean."""

    __slots__ = ("checks", "always", "copies", "verdicts", "clean")

    def __init__(self, invariants: Iterable[Invariant]) -> None:
        self.checks = [(inv.name, inv.check, RULES.get(inv.name)) for inv in invariants]
        self.always = [(full, QUICK.get(name)) for name, full, rule in self.checks if rule is None]
        self.copies: dict[str, Any] = {}
        self.verdicts: dict[str, list[Violation]] = {}
        self.clean = False


_MEMOS: weakref.WeakKeyDictionary[System, _Memo] = weakref.WeakKeyDictionary()


def _refresh(s: System, memo: _Memo) -> dict[str, Any]:
    """Renew the copies of the parts that changed; their previous copies, by part."""
    old = {}
    copies = memo.copies
    for name, part in PARTS.items():
        view = part.view(s)
        prev = copies.get(name)
        if prev != view:
            old[name] = prev
            copies[name] = part.copy(view, prev)
    return old


def incremental_check(
    s: System, applicable: Callable[[Profile], Iterable[Invariant]]
) -> list[Violation]:
    """The violations of the ``applicable`` invariants of ``s``'s profile, as their full checks
    would report them."""
    memo = _MEMOS.get(s)
    if memo is None:
        memo = _MEMOS[s] = _Memo(applicable(s.profile))
    old = _refresh(s, memo)
    if not old and memo.clean:
        # Nothing a ruled invariant reads changed, and all of them held: only the others run
        # (in order; the ruled ones would add nothing).
        out: list[Violation] = []
        for full, quick in memo.always:
            if quick is None or not quick(s):
                out += full(s)
        return out
    verdicts = memo.verdicts
    delta = None
    out = []
    clean = True
    for name, full, rule in memo.checks:
        if rule is None:
            quick = QUICK.get(name)
            verdict = [] if quick is not None and quick(s) else full(s)
        else:
            verdict = verdicts.get(name)
            if verdict is None or old and not rule.reads.isdisjoint(old):
                if verdict == [] and rule.holds is not None:
                    delta = delta or Delta(s, old)
                    if not rule.holds(s, delta):
                        verdict = full(s)
                else:
                    verdict = full(s)
                verdicts[name] = verdict
            clean = clean and not verdict
        if verdict:
            out += verdict
    memo.clean = clean
    return out
