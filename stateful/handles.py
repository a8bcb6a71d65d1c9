"""Handles on allocated blocks: the values of the state machine's ``blocks`` bundle.

A handle names one allocation, not one pfn: when offline or ``alloc_contig_range`` migrates
the block, the handle follows it to the target. A handle whose block was freed another way (a
page-list free, an unpaired migration) is dead; drawing it re-resolves it to the newest live
block rather than rejecting the example. Every block in the pool has one live handle in the
bundle, so the bundle is never empty while there is something to free.
"""

from __future__ import annotations

import attrs

from pcpfuzz.system import System

MIGRATED = "page migrated"
"""The model's event for a completed migration (``pcpfuzz.mm.migrate``)."""


@attrs.define(eq=False)
class BlockHandle:
    """Allocation number ``serial``: a block of ``order`` at ``pfn`` (None once freed)."""

    serial: int
    pfn: int | None
    order: int

    def __repr__(self) -> str:
        where = "freed" if self.pfn is None else f"pfn {self.pfn}"
        return f"block{self.serial}({where}, order {self.order})"


class HandleTable:
    """The handles of ``system``'s allocated blocks, kept up to date after every action."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.by_pfn: dict[int, BlockHandle] = {}
        self._serials = 0
        self._migrations = 0

    def live(self, handle: BlockHandle) -> bool:
        """The handle's block is allocated and in the pool: freeing it is enabled."""
        blk = None if handle.pfn is None else self.system.allocated.get(handle.pfn)
        return blk is not None and blk.holder is None

    def resolve(self, handle: BlockHandle) -> int:
        """The pfn to free for a drawn ``handle``: its own block when live, else the newest
        live block. The pool must not be empty."""
        if not self.live(handle):
            handle = max((h for h in self.by_pfn.values() if self.live(h)), key=_serial)
        assert handle.pfn is not None
        return handle.pfn

    def update(self) -> list[BlockHandle]:
        """Follow the last action: rebind the handles of migrated blocks to their targets, kill
        those of freed blocks, and return new handles for blocks that entered the pool."""
        s = self.system
        migrations = s.events.get(MIGRATED, 0)
        moved = migrations - self._migrations
        self._migrations = migrations
        gone = [pfn for pfn in self.by_pfn if pfn not in s.allocated]
        new = [p for p, blk in s.allocated.items() if blk.holder is None and p not in self.by_pfn]
        if not gone and not new:
            return []
        for pfn in gone:
            handle = self.by_pfn.pop(pfn)
            handle.pfn = None
            target = next((p for p in new if s.allocated[p].order == handle.order), None)
            if moved > 0 and target is not None:
                moved -= 1
                new.remove(target)
                handle.pfn = target
                self.by_pfn[target] = handle
        fresh = []
        for pfn in sorted(new):
            self._serials += 1
            handle = BlockHandle(self._serials, pfn, s.allocated[pfn].order)
            self.by_pfn[pfn] = handle
            fresh.append(handle)
        return fresh


def _serial(handle: BlockHandle) -> int:
    return handle.serial
