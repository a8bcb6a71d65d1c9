"""Geometries: small zones whose sizing still gives active pcplists (spec §8.2, DESIGN "The
model").

Every draw is a valid ``Geometry`` by construction (nothing is filtered out): the memory-block
size is a multiple of ``max(MAX_ORDER_NR_PAGES, pageblock_nr_pages)``, ``pageblock_order`` is at
most ``MAX_ORDER - 1`` as in the kernel, CMA areas start and end on that alignment (as
``cma_init_reserved_mem`` requires), and the sizing (the boot value of the fraction sysctl, or a
scale on the managed page count in default mode) gives every CPU ``high >= 2``.
"""

from __future__ import annotations

from hypothesis import strategies as st

from pcpfuzz.geometry import Geometry
from pcpfuzz.mm.sizing import MIN_PERCPU_PAGELIST_FRACTION, pageset_high_batch

DEFAULT_MODE_MANAGED = (8192, 24575)
"""Managed-page counts (after scaling) for which default-mode sizing gives batch 1 or 3,
high 6 or 18 (spec §8.1 table)."""
MIN_HIGH = 2
"""The smallest ``high`` that lets a freed page stay on a pcplist."""


@st.composite
def sizings(draw: st.DrawFn, nr_pages: int) -> tuple[int, int]:
    """``(fraction, sizing_scale)`` for a zone of ``nr_pages`` managed pages with ``high >= 2``:
    fraction mode (``8 <= fraction <= nr_pages / 2``, scale 1) or default mode (fraction 0, a
    scale that puts the managed count in ``DEFAULT_MODE_MANAGED``)."""
    top_fraction = nr_pages // MIN_HIGH
    if top_fraction >= MIN_PERCPU_PAGELIST_FRACTION and draw(st.booleans()):
        return draw(st.integers(MIN_PERCPU_PAGELIST_FRACTION, top_fraction)), 1
    lo, hi = DEFAULT_MODE_MANAGED
    scale = draw(st.integers(-(-lo // nr_pages), hi // nr_pages))
    return 0, scale


MAX_CMA_AREAS = 2
"""At most this many aligned units of a drawn zone are CMA (adjacent ones form one area)."""


@st.composite
def cma_pageblocks(draw: st.DrawFn, nr_pages: int, align: int, pageblock_order: int) -> tuple:
    """CMA pageblocks for a zone of ``nr_pages``: a few of its ``align``-page units (``align``
    is ``max(MAX_ORDER_NR_PAGES, pageblock_nr_pages)``), so every area is aligned."""
    step = align >> pageblock_order
    units = draw(st.sets(st.integers(0, nr_pages // align - 1), max_size=MAX_CMA_AREAS))
    return tuple(pb for u in sorted(units) for pb in range(u * step, (u + 1) * step))


@st.composite
def geometries(
    draw: st.DrawFn,
    *,
    cpus: tuple[int, int] = (2, 4),
    blocks: tuple[int, int] = (2, 4),
    max_block_pages: int = 32,
) -> Geometry:
    """A zone of ``blocks`` memory blocks of at most ``max_block_pages`` pages on ``cpus`` CPUs,
    with ``pageblock_order`` 1-3, ``MAX_ORDER`` one or two above it, some blocks possibly
    offline at boot, active pcplists, and either some CMA areas or possibly a ZONE_MOVABLE
    zone (the model's zone is one or the other: CMA in ZONE_MOVABLE is not modelled)."""
    pageblock_order = draw(st.integers(1, 3))
    max_order = draw(st.integers(pageblock_order + 1, pageblock_order + 2))
    align = max(1 << (max_order - 1), 1 << pageblock_order)
    block_pages = align * draw(st.integers(1, max(1, max_block_pages // align)))
    nr_blocks = draw(st.integers(*blocks))
    online_blocks = draw(st.integers(1, nr_blocks))
    fraction, scale = draw(sizings(online_blocks * block_pages))
    cma = draw(cma_pageblocks(nr_blocks * block_pages, align, pageblock_order))
    return Geometry(
        nr_blocks=nr_blocks,
        block_pages=block_pages,
        pageblock_order=pageblock_order,
        max_order=max_order,
        nr_cpus=draw(st.integers(*cpus)),
        fraction=fraction,
        sizing_scale=scale,
        online_blocks=None if online_blocks == nr_blocks else online_blocks,
        cma_pageblocks=cma,
        movable_zone=not cma and draw(st.booleans()),
    )


def boot_high_batch(geo: Geometry) -> tuple[int, int]:
    """The (high, batch) every CPU gets at boot in ``geo``."""
    managed = geo.initially_online * geo.block_pages * geo.sizing_scale
    return pageset_high_batch(managed, geo.fraction)
