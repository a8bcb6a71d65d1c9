"""Migration of allocated pages for offline and ``alloc_contig_range``: ``scan_movable_pages``
and ``do_migrate_range`` of mm/memory_hotplug.c (spec §10.1 helpers, §14.2 item 13)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.constants import MT
from pcpfuzz.state import Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System


def scan_movable_pages(s: System, start: int, end: int) -> int | None:
    """``scan_movable_pages``: the first pfn of an LRU (movable, not isolated from the LRU)
    block in range, or None for -ENOENT. Free pages, wherever they are, are not movable. An
    unmovable block is skipped whole (all its pages share its head)."""
    alloc_head, allocated = s.alloc_head, s.allocated
    pfn = start
    while pfn < end:
        head = alloc_head[pfn]
        if head < 0:
            pfn += 1
            continue
        blk = allocated[head]
        if blk.movable and blk.holder is None:
            return pfn
        pfn = head + (1 << blk.order)
    return None


def do_migrate_range(s: System, t: Task, start: int, end: int) -> TaskGen:
    """``do_migrate_range`` + ``migrate_pages``: isolate the LRU blocks in range from their
    owners, then for each allocate a target through the normal allocator (it may be a stray
    pcp page in (a)/(b)), hand the contents over, and free the source. Like the kernel's pfn
    walk, sources are taken and migrated in pfn order."""
    sources = []
    for head in range(start, end):
        if s.alloc_head[head] != head:
            continue
        blk = s.allocated[head]
        if blk.movable and blk.holder is None:
            blk.holder = t.tid
            sources.append(head)
    for src in sources:
        order = s.allocated[src].order
        yield None
        dst = yield from s.mm.alloc_pages(s, t, order, MT.MOVABLE, holder=t.tid)
        if dst is None:
            s.allocated[src].holder = None
            s.note("migration target allocation failed")
            continue
        yield None
        s.allocated[dst].holder = None
        s.release(src)
        s.note("page migrated")
        if s.tracing:
            s.klog(t.cpu, f"migrate_pages: pfn {src} -> pfn {dst}, freeing pfn {src}")
        yield from s.mm.free_pages(s, t, src, order)
    return None
