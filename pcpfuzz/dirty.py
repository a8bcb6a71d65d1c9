"""Dirty marks: the model records which parts of the state an action wrote, and which blocks
it moved.

``System.dirty`` is a bitmask of the parts below. The write primitives set the bit of the
part they touch (``s.dirty |= PBMT``); those that move a block also journal it: a free-list
entry added or removed (``free_moved``, in ``System.free_journal``), a block put on or taken off
a pcplist, allocated, or landed from flight (``page_moved``, ``landed``, in
``System.page_journal``). The incremental checker (``pcpfuzz.incremental``) reads the mask and
the journals after an action, re-checks only the invariants that read a marked part (proving
CONSERVE, FREECOUNT and FL-TYPE from the journals), and clears them. A write outside the
journaling primitives marks its parts with ``OPAQUE`` (``touch``): the journals are then
incomplete and no proof uses them. ``System.__init__`` starts with ``ALL`` set, so a fresh system
is checked in full once.

A write the model forgets to mark or journal would leave a verdict stale: verify mode
(``PCPFUZZ_VERIFY_DIRTY=1``, or ``set_verify``) also compares every part with a private copy after
each action, and the journals with what changed, and raises ``UnmarkedWrite`` naming the part.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pcpfuzz.system import System

FREE: Final = 1
"""Buddy free lists, ``nr_free``, PageBuddy order and type (``buddy_order``, ``buddy_mt``)."""
FREECOUNT: Final = 2
"""``NR_FREE_PAGES``, ``NR_FREE_CMA_PAGES`` and the known undo-window drift of the first."""
PCP: Final = 4
"""Every CPU's pcplists and counts, and the list of pagesets itself (``s.pcp``)."""
CACHED: Final = 8
"""``cached_mt``: the migratetype a page cached when freed or allocated."""
ALLOC: Final = 16
"""Allocated blocks (``allocated``) and blocks in flight in a free (``inflight``)."""
PRESENT: Final = 32
"""``page_present``."""
PBMT: Final = 64
"""``pageblock_mt``: pageblock migratetypes."""
ONLINE: Final = 128
"""``block_online``."""
BUGS: Final = 256
"""``System.bugs``: violations the model code reported (``System.bug``)."""
ISO: Final = 512
"""``iso_users``: the ranges tasks hold isolated."""
OPAQUE: Final = 1024
"""A write outside the journaling primitives: what moved is not in the journals."""
SIZING: Final = 2048
"""pcp sizing: every CPU's high and batch (v6.12: high_min, high_max, whether its owner clamped
high), the zone's cached values, whether the zone has its boot pageset, the fraction sysctl,
the watermarks."""
ALL: Final = 4095
JOURNAL_LIMIT: Final = 4096
"""Entries a journal keeps when no checker reads it; past that, it stops and marks ``OPAQUE``."""

NAMES: Final = (
    "FREE",
    "FREECOUNT",
    "PCP",
    "CACHED",
    "ALLOC",
    "PRESENT",
    "PBMT",
    "ONLINE",
    "BUGS",
    "ISO",
    "OPAQUE",
    "SIZING",
)
"""The parts' names, by bit position."""


def names(mask: int) -> list[str]:
    """The names of the parts set in ``mask``."""
    return [name for bit, name in enumerate(NAMES) if mask >> bit & 1]


def free_moved(s: System, head: int, order: int, mt: int, sign: int) -> None:
    """Free-list entry (``head``, ``order``) joins (``sign`` 1) or leaves (-1) list ``mt``."""
    s.dirty |= FREE
    journal = s.free_journal
    if len(journal) < JOURNAL_LIMIT:
        journal.append((head, order, mt, sign))
    else:
        s.dirty |= OPAQUE


def page_moved(s: System, part: int, head: int, order: int, sign: int) -> None:
    """The block at ``head`` of ``order`` arrives at (``sign`` 1) or leaves (-1) a place of
    ``part`` (a pcplist: ``PCP``; the allocated or in-flight blocks: ``ALLOC``)."""
    s.dirty |= part
    journal = s.page_journal
    if len(journal) < JOURNAL_LIMIT:
        journal.append((head, order, sign))
    else:
        s.dirty |= OPAQUE


def landed(s: System, pfn: int, must: bool = False) -> None:
    """The block in flight at ``pfn`` reached a pcplist or the buddy; with ``must``, a block
    not in flight is a model error (``KeyError``), as ``del s.inflight[pfn]``."""
    order = s.inflight.pop(pfn) if must else s.inflight.pop(pfn, None)
    if order is not None:
        page_moved(s, ALLOC, pfn, order, -1)


def touch(s: System, parts: int) -> None:
    """Mark ``parts`` written outside the journaling primitives (state surgery in a test)."""
    s.dirty |= parts | OPAQUE


class UnmarkedWrite(AssertionError):
    """The model wrote a part of the state without marking it (verify mode)."""


_verify: bool = os.environ.get("PCPFUZZ_VERIFY_DIRTY", "") not in ("", "0")
"""Whether verify mode is on: ``PCPFUZZ_VERIFY_DIRTY=1`` at import, or ``set_verify``."""


def set_verify(on: bool) -> None:
    """Turn verify mode on or off for the systems first checked from now on."""
    global _verify
    _verify = on


def verifying() -> bool:
    """Whether verify mode is on."""
    return _verify


def _views(s: System) -> list[object]:
    """Each part's content, as a private copy, by bit position (none for ``OPAQUE``)."""
    z = s.zone
    return [
        (
            [[fl[:] for fl in by_mt] for by_mt in z.free_list],
            z.nr_free[:],
            s.buddy_order[:],
            s.buddy_mt[:],
        ),
        (z.nr_free_pages, z.nr_free_cma_pages, s.known_free_drift),
        ([[lst[:] for lst in p.lists] for p in s.pcp], [p.count for p in s.pcp]),
        s.cached_mt[:],
        (dict(s.inflight), {pfn: blk.order for pfn, blk in s.allocated.items()}),
        s.page_present[:],
        s.pageblock_mt[:],
        s.block_online[:],
        len(s.bugs),
        list(s.iso_users),
        None,
        _sizing(s),
    ]


def _sizing(s: System) -> object:
    """The ``SIZING`` part's content (the v6.12 fields where the profile has them)."""
    z = s.zone
    z612 = getattr(s, "zone612", None)
    return (
        s.fraction,
        z.pageset_high,
        z.pageset_batch,
        z.pageset_is_boot,
        z.watermark,
        None if z612 is None else z612.triple(),
        [
            (
                p.high,
                p.batch,
                getattr(p, "high_min", None),
                getattr(p, "high_max", None),
                getattr(p, "clamped", None),
            )
            for p in s.pcp
        ],
    )


class Shadow:
    """Verify mode's copy of every part of one system, to compare with after each action."""

    __slots__ = ("views",)

    def __init__(self, s: System) -> None:
        self.views = _views(s)

    def verify(self, s: System, dirty: int) -> None:
        """Raise ``UnmarkedWrite`` if a part changed since the last call without its mark in
        ``dirty``, or (unless ``OPAQUE``) moved blocks the journals do not name; then take the
        new copies."""
        views, old = _views(s), self.views
        unmarked = sum(
            1 << bit
            for bit, (new, was) in enumerate(zip(views, old, strict=True))
            if new != was and not dirty >> bit & 1
        )
        self.views = views
        where = f"{s.profile.name}: action {s.actions_applied}"
        if unmarked:
            raise UnmarkedWrite(
                f"{where} wrote {', '.join(names(unmarked))} without marking it (pcpfuzz.dirty)"
            )
        if dirty & OPAQUE:
            return
        free: Counter[tuple[int, ...]] = Counter()
        for head, order, mt, sign in s.free_journal:
            free[head, order, mt] += sign
        if _nonzero(free) != _nonzero(_free_diff(views, old)):
            raise UnmarkedWrite(f"{where}: the free journal does not match the free lists")
        pages: Counter[tuple[int, ...]] = Counter()
        for head, order, sign in s.page_journal:
            pages[head, order] += sign
        if _nonzero(pages) != _nonzero(_page_diff(s, views, old)):
            raise UnmarkedWrite(f"{where}: the page journal does not match the pcplists and blocks")


def _nonzero(c: Counter[tuple[int, ...]]) -> dict[tuple[int, ...], int]:
    return {k: v for k, v in c.items() if v}


def _free_diff(views: list[Any], old: list[Any]) -> Counter[tuple[int, ...]]:
    """Free-list entries (head, order, mt) gained (positive) and lost (negative)."""
    out: Counter[tuple[int, ...]] = Counter()
    for order, (by_mt, was) in enumerate(zip(views[0][0], old[0][0], strict=True)):
        for mt, (fl, wfl) in enumerate(zip(by_mt, was, strict=True)):
            out.update((h, order, mt) for h in fl)
            out.subtract((h, order, mt) for h in wfl)
    return out


def _page_diff(s: System, views: list[Any], old: list[Any]) -> Counter[tuple[int, ...]]:
    """Blocks (head, order) gained and lost by the pcplists, allocated and in-flight blocks."""
    out: Counter[tuple[int, ...]] = Counter()
    for pcp, lists, was in zip(s.pcp, views[2][0], old[2][0], strict=True):
        for idx, (lst, wlst) in enumerate(zip(lists, was, strict=True)):
            out.update((h, pcp.order_of(idx)) for h in lst)
            out.subtract((h, pcp.order_of(idx)) for h in wlst)
    for new, prev in zip(views[4], old[4], strict=True):
        out.update(new.items())
        out.subtract(prev.items())
    return out
