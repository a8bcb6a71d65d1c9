"""Dirty marks: the model records which parts of the state an action wrote.

``System.dirty`` is a bitmask of the parts below. The write primitives set the bit of the
part they touch (``s.dirty |= FREE``); the incremental checker (``pcpfuzz.incremental``) reads
the mask after an action, re-checks only the invariants that read a marked part, and clears
it. ``System.__init__`` starts with ``ALL`` set, so a fresh system (or a copy of one) is checked
in full once.

A write the model forgets to mark would leave a verdict stale: ``pcpfuzz.incremental``'s
verify mode (``PCPFUZZ_VERIFY_DIRTY=1``, or ``set_verify``) also compares every part with a
private copy after each action and raises ``UnmarkedWrite`` naming the part.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

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
ALL: Final = 1023

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
)
"""The parts' names, by bit position."""


def names(mask: int) -> list[str]:
    """The names of the parts set in ``mask``."""
    return [name for bit, name in enumerate(NAMES) if mask >> bit & 1]


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
    """Each part's content, as a private copy, by bit position."""
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
    ]


class Shadow:
    """Verify mode's copy of every part of one system, to compare with after each action."""

    __slots__ = ("views",)

    def __init__(self, s: System) -> None:
        self.views = _views(s)

    def verify(self, s: System, dirty: int) -> None:
        """Raise ``UnmarkedWrite`` if a part changed since the last call without its mark in
        ``dirty``; then take the new copies."""
        views = _views(s)
        unmarked = sum(
            1 << bit
            for bit, (new, old) in enumerate(zip(views, self.views, strict=True))
            if new != old and not dirty >> bit & 1
        )
        self.views = views
        if unmarked:
            raise UnmarkedWrite(
                f"{s.profile.name}: action {s.actions_applied} wrote {', '.join(names(unmarked))} "
                "without marking it (pcpfuzz.dirty)"
            )
