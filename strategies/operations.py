"""Arguments of the model's operations (``pcpfuzz.ops``), as the kernel requires them.

The geometry-level strategies (orders, migratetypes, MAX_ORDER- and pageblock-aligned contig
ranges, memory blocks, sysctl values) know nothing of the state. ``options(op, system)`` lists
the weighted argument tuples a driver chooses among in a state, and ``arguments`` (a strategy)
and ``choose_arguments`` (for an index a driver drew) pick one the op accepts right now (one of
``op.args(system)``) with one stable choice (``strategies.choice``): a driver never rejects one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from hypothesis import strategies as st

from pcpfuzz.constants import MT
from pcpfuzz.geometry import Geometry
from pcpfuzz.mm.contig import contig_alignment as mm_contig_alignment
from pcpfuzz.ops import ALLOC_TYPES, FRACTION_VALUES, get_op
from pcpfuzz.system import System
from strategies.choice import pick, stable_choice


def _orders_weighted(max_order: int) -> tuple[int, ...]:
    return (0,) * max_order + tuple(range(max_order))


_MIGRATETYPES_WEIGHTED = (int(MT.MOVABLE),) * 6 + tuple(
    int(mt) for mt in ALLOC_TYPES if mt != MT.MOVABLE
)


def orders(geo: Geometry) -> st.SearchStrategy[int]:
    """An allocation order, ``0 .. MAX_ORDER - 1``, order 0 (the pcplist path) at least half
    of the time, as in a real kernel; shrinks to order 0."""
    return st.sampled_from(_orders_weighted(geo.max_order))


def migratetypes() -> st.SearchStrategy[int]:
    """A migratetype an allocation asks for: MOVABLE (user memory, which offline can migrate)
    three times in four, else UNMOVABLE or RECLAIMABLE (which make isolation fail where they
    land); shrinks to MOVABLE."""
    return st.sampled_from(_MIGRATETYPES_WEIGHTED)


def contig_alignment(geo: Geometry) -> int:
    """``alloc_contig_range`` ranges start and end on ``max(MAX_ORDER_NR_PAGES,
    pageblock_nr_pages)`` boundaries (spec §12, §16 "Alignment"; v6.1 needs only pageblocks,
    ``System.mm.contig_alignment``)."""
    return mm_contig_alignment(geo)


def contig_starts(geo: Geometry) -> tuple[int, ...]:
    """Every aligned start of a one-unit ``alloc_contig_range`` range in the zone."""
    return tuple(range(0, geo.nr_pages, contig_alignment(geo)))


def contig_ranges(geo: Geometry) -> st.SearchStrategy[tuple[int, int]]:
    """An aligned ``[start, end)`` pfn range of one alignment unit."""
    align = contig_alignment(geo)
    return st.sampled_from(contig_starts(geo)).map(lambda pfn: (pfn, pfn + align))


def memory_blocks(geo: Geometry) -> st.SearchStrategy[int]:
    """A memory block index (the unit of online and offline)."""
    return st.integers(0, geo.nr_blocks - 1)


def fractions() -> st.SearchStrategy[int]:
    """A value written to ``vm.percpu_pagelist_fraction``, including a rejected one (7)."""
    return st.sampled_from(FRACTION_VALUES)


def hot_pfn(s: System) -> int | None:
    """The page where the action is: the newest free in flight, else the newest allocation."""
    for pages in (s.inflight, s.allocated):
        if pages:
            return next(reversed(pages))
    return None


def _with_hot(options: tuple[tuple[int, ...], ...], hot: tuple[int, ...] | None):
    """``options`` with the hot one first and weighted as all the others together."""
    return options if hot is None else (hot,) * len(options) + options


def options(op: str, s: System) -> tuple[tuple[int, ...], ...]:
    """The argument tuples a driver chooses ``op``'s arguments among in ``s``, repeated by
    weight, before keeping the enabled ones: allocations by order and type (as ``orders``
    and ``migratetypes``); offline and ``alloc_contig_range`` the range of the page where the
    action is (``hot_pfn``: races happen where the CPUs' work overlaps) half of the time;
    frees the pool's blocks, newest allocation first; free lists the enabled runs of pool
    pages; the others every value the geometry allows."""
    geo = s.geo
    match op:
        case "alloc_contig_range":
            align = s.mm.contig_alignment(geo)
            hot = hot_pfn(s)
            return _with_hot(
                _starts(geo.nr_pages, align), None if hot is None else (hot - hot % align,)
            )
        case "offline_pages":
            hot = hot_pfn(s)
            blocks = _static_options("online_pages", geo)
            return _with_hot(blocks, None if hot is None else (hot // geo.block_pages,))
        case "free_pages":
            return tuple((p,) for p, blk in reversed(s.allocated.items()) if blk.holder is None)
    if op in STATIC:
        return _static_options(op, geo)
    return tuple(get_op(op).args(s))


STATIC = frozenset(
    (
        "alloc_pages",
        "drain_local_pages",
        "get_hwpoison_page",
        "drain_all_pages",
        "percpu_pagelist_fraction",
        "online_pages",
    )
)
"""Operations whose options depend on the geometry only (built once: ``_static_options``)."""


@lru_cache(maxsize=64)
def _starts(nr_pages: int, align: int) -> tuple[tuple[int, ...], ...]:
    """Every ``align``-aligned start of an ``alloc_contig_range`` range."""
    return tuple((pfn,) for pfn in range(0, nr_pages, align))


@lru_cache(maxsize=64)
def _static_options(op: str, geo: Geometry) -> tuple[tuple[int, ...], ...]:
    """The options of ``op`` in ``STATIC``."""
    match op:
        case "alloc_pages":
            return tuple(
                (o, mt) for o in _orders_weighted(geo.max_order) for mt in _MIGRATETYPES_WEIGHTED
            )
        case "drain_local_pages" | "get_hwpoison_page":
            return ((),)
        case "drain_all_pages":
            return ((1,), (0,))
        case "percpu_pagelist_fraction":
            return tuple((v,) for v in FRACTION_VALUES)
        case "online_pages":
            return tuple((b,) for b in range(geo.nr_blocks))
    raise ValueError(f"{op} has options that depend on the state")


def choose_arguments(
    op: str, s: System, index: int, enabled: Sequence[tuple[int, ...]] | None = None
) -> tuple[int, ...]:
    """The argument tuple that choice ``index`` (any natural number) names among ``options``,
    kept to ``enabled`` (default: ``op.args(s)``), which must not be empty (``pick``)."""
    opts = options(op, s)
    allowed = set(get_op(op).args(s) if enabled is None else enabled)
    return pick(opts, index % len(opts), allowed.__contains__)


def arguments(
    op: str, s: System, enabled: Sequence[tuple[int, ...]] | None = None
) -> st.SearchStrategy[tuple[int, ...]]:
    """An argument tuple of ``op`` among ``enabled`` (default: ``op.args(s)``, all that ``s``
    enables), which must not be empty: one stable choice among ``options``."""
    opts = options(op, s)
    allowed = set(get_op(op).args(s) if enabled is None else enabled)
    return stable_choice(opts, allowed.__contains__)
