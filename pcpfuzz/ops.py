"""The kernel operations a driver can start on a CPU, with the arguments enabled right now.

Each op is a thin entry point over the ``pcpfuzz.mm`` function it names; ``args`` lists the
argument tuples that make sense in the current state, so a driver never proposes an impossible
one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from pcpfuzz.constants import MT, mt_name
from pcpfuzz.profiles import Profile
from pcpfuzz.state import PAGE_ALLOC_COSTLY_ORDER, Task, TaskGen

if TYPE_CHECKING:
    from pcpfuzz.system import System

ALLOC_TYPES = (MT.UNMOVABLE, MT.MOVABLE, MT.RECLAIMABLE)
FRACTION_VALUES = (0, 7, 8, 12, 16)
LIST_LENGTHS = (2, 3)


@attrs.frozen
class Op:
    """A startable operation: its kernel entry point and the arguments enabled in a state."""

    name: str
    run: Callable[..., TaskGen]
    args: Callable[[System], list[tuple[int, ...]]]
    describe: Callable[[tuple[int, ...]], str]
    available: Callable[[Profile], bool] = lambda _p: True


def _alloc(s: System, t: Task, order: int, mt: int) -> TaskGen:
    yield from s.mm.alloc_pages(s, t, order, mt)
    return None


def _alloc_args(s: System) -> list[tuple[int, ...]]:
    if not s.zone.present_pages:
        return []  # an unpopulated zone is in no zonelist: nothing allocates from it
    return [(o, int(mt)) for o in range(s.geo.max_order) for mt in ALLOC_TYPES]


def _free(s: System, t: Task, pfn: int) -> TaskGen:
    order = s.release(pfn)
    yield from s.mm.free_pages(s, t, pfn, order)
    return None


def _free_args(s: System) -> list[tuple[int, ...]]:
    return [(pfn,) for pfn in s.pool()]


def _free_list(s: System, t: Task, *pfns: int) -> TaskGen:
    for pfn in pfns:
        s.release(pfn)
    yield from s.mm.free_unref_page_list(s, t, pfns)
    return None


def _free_list_args(s: System) -> list[tuple[int, ...]]:
    pages = [pfn for pfn in s.pool() if s.allocated[pfn].order == 0]
    return [tuple(pages[i : i + n]) for n in LIST_LENGTHS for i in range(len(pages) - n + 1)]


def _drain_local(s: System, t: Task) -> TaskGen:
    yield from s.mm.drain_local_pages(s, t)
    return None


def _drain_all(s: System, t: Task, zone: int) -> TaskGen:
    yield from s.mm.drain_all_pages(s, t, bool(zone))
    return None


def _pagelist_sysctl(s: System, t: Task, value: int) -> TaskGen:
    return (yield from s.mm.pagelist_sysctl(s, t, value))


def _contig_args(s: System) -> list[tuple[int, ...]]:
    align = s.mm.contig_alignment(s.geo)
    return [(pfn,) for pfn in range(0, s.nr_pages, align) if s.pfn_online(pfn)]


def _contig(s: System, t: Task, start: int) -> TaskGen:
    return (yield from s.mm.alloc_contig_range(s, t, start, start + s.mm.contig_alignment(s.geo)))


def _hotplug_args(s: System, online: bool) -> list[tuple[int, ...]]:
    busy = {t.args[0] for t in s.tasks() if t.op in ("offline_pages", "online_pages")}
    return [(b,) for b in range(s.geo.nr_blocks) if s.block_online[b] == online and b not in busy]


def but_the_last_block(s: System, args: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """``offline_pages`` arguments ``args`` without the zone's last online block that no
    offline is taking already: the zone stays populated."""
    leaving = {t.args[0] for t in s.tasks() if t.op == "offline_pages"}
    staying = {b for b, online in enumerate(s.block_online) if online} - leaving
    return [a for a in args if staying - {a[0]}]


def _offline_args(s: System) -> list[tuple[int, ...]]:
    args = _hotplug_args(s, True)
    return but_the_last_block(s, args) if s.keep_populated else args


EMPTIES_THE_ZONE = frozenset({"v5.8-online-nopcpupdate"})
"""Profiles whose known bug needs an emptied zone (onlining into it skips the update)."""


def campaign_keeps_populated(profile: Profile) -> bool:
    """Whether fuzz campaigns on ``profile`` keep the zone populated (``System.keep_populated``).
    Emptying the zone under a concurrent pageset user is a use-after-free on every 5.x kernel
    (PCP-UAF; ``tests/test_stateful.py``, README "Zone reset"), which would mask what the
    series and the zoo bugs change. The modern kernels (v6.1, v6.12) empty the zone: their
    PCP-UAF counterpart is reported there (``tests/test_v61.py``, ``tests/test_v612.py``), and
    their PCP-HB finding needs the empty zone, as do the profiles of ``EMPTIES_THE_ZONE``."""
    return not profile.pcp_spinlock and profile.name not in EMPTIES_THE_ZONE


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Op(
            "alloc_pages",
            _alloc,
            _alloc_args,
            lambda a: f"alloc_pages(order {a[0]}, {mt_name(a[1])})",
        ),
        Op("free_pages", _free, _free_args, lambda a: f"free_pages(pfn {a[0]})"),
        Op(
            "free_unref_page_list",
            _free_list,
            _free_list_args,
            lambda a: f"free_unref_page_list(pfns {', '.join(map(str, a))})",
        ),
        Op("drain_local_pages", _drain_local, lambda s: [()], lambda a: "drain_local_pages()"),
        Op(
            "drain_all_pages",
            _drain_all,
            lambda s: [(1,), (0,)],
            lambda a: f"drain_all_pages({'zone' if a[0] else 'NULL'})",
        ),
        Op(
            "percpu_pagelist_fraction",
            _pagelist_sysctl,
            lambda s: [(v,) for v in FRACTION_VALUES],
            lambda a: f"sysctl vm.percpu_pagelist_fraction={a[0]}",
            lambda p: not p.pcp_spinlock,
        ),
        Op(
            "percpu_pagelist_high_fraction",
            _pagelist_sysctl,
            lambda s: [(v,) for v in FRACTION_VALUES],
            lambda a: f"sysctl vm.percpu_pagelist_high_fraction={a[0]}",
            lambda p: p.pcp_spinlock,
        ),
        Op(
            "alloc_contig_range",
            _contig,
            _contig_args,
            lambda a: f"alloc_contig_range(pfn {a[0]})",
        ),
        Op(
            "offline_pages",
            lambda s, t, block: s.mm.offline_pages(s, t, block),
            _offline_args,
            lambda a: f"offline_pages(block {a[0]})",
        ),
        Op(
            "online_pages",
            lambda s, t, block: s.mm.online_pages(s, t, block),
            lambda s: _hotplug_args(s, False),
            lambda a: f"online_pages(block {a[0]})",
        ),
        Op(
            "vmstat_update",
            lambda s, t: s.mm.vmstat_update(s, t),
            lambda s: [()],
            lambda a: "vmstat_update() [refresh_cpu_vm_stats: decay_pcp_high]",
            lambda p: p.freelist_hygiene,
        ),
        Op(
            "get_hwpoison_page",
            lambda s, t: s.mm.get_hwpoison_page(s, t),
            lambda s: [()] if s.zone.present_pages else [],  # memory_failure needs an online pfn
            lambda a: "get_hwpoison_page() [zone_pcp_disable user]",
            lambda p: p.hwpoison_user,
        ),
    )
}


NESTED_OPS: dict[str, str] = {
    "free_pages": "irq",
    "alloc_pages": "irq",
    "vmstat_update": "kworker",
}
"""Operations an ``Interrupt`` starts over a busy CPU's task, and the context each runs in:
a hardirq frees a block (``free_unref_page``, an I/O completion's ``folio_put``) or allocates
GFP_ATOMIC-like; the vmstat work item preempts the task (modern-kernels §7.2 items 2, 4, 11)."""
CONTEXT_LABEL = {"irq": "IRQ", "kworker": "kworker"}
"""How a trace names a nested context."""


def interrupts_modelled(profile: Profile) -> bool:
    """Whether ``profile`` has ``Interrupt`` actions: the kernels with a pcp trylock fallback
    (v6.1, v6.12). In 5.9-5.11 every pcp section runs with IRQs off (``local_irq_save``) and
    there is no fallback, so an interrupt runs the code a task runs, only between sections."""
    return profile.pcp_spinlock


def nested_args(s: System, name: str) -> list[tuple[int, ...]]:
    """The arguments an ``Interrupt`` may give ``name``: a hardirq allocation is
    GFP_ATOMIC-like (a network receive buffer, a block completion's bounce page), so
    UNMOVABLE and at most ``PAGE_ALLOC_COSTLY_ORDER`` (no THP is allocated atomically); the
    others take their operation's arguments."""
    args = OPS[name].args(s)
    if name == "alloc_pages":
        return [a for a in args if a[1] == MT.UNMOVABLE and a[0] <= PAGE_ALLOC_COSTLY_ORDER]
    return args


class UnknownOp(KeyError):
    """An operation name that is not in ``OPS``."""

    def __str__(self) -> str:
        return f"unknown operation {self.args[0]!r} (known: {', '.join(OPS)})"


def get_op(name: str) -> Op:
    """The op called ``name``; raises ``UnknownOp``."""
    try:
        return OPS[name]
    except KeyError:
        raise UnknownOp(name) from None
