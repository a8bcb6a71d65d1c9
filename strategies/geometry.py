"""Geometries: small zones whose sizing still gives active pcplists (spec §8.2, DESIGN "The
model").

Every draw is a valid ``Geometry`` by construction (nothing is filtered out): the memory-block
size is a multiple of ``max(MAX_ORDER_NR_PAGES, pageblock_nr_pages)``, ``pageblock_order`` is at
most ``MAX_ORDER - 1`` as in the kernel, and the sizing (the boot value of the fraction sysctl,
or a scale on the managed page count in default mode) gives every CPU ``high >= 2``.
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
    offline at boot, and active pcplists."""
    pageblock_order = draw(st.integers(1, 3))
    max_order = draw(st.integers(pageblock_order + 1, pageblock_order + 2))
    align = max(1 << (max_order - 1), 1 << pageblock_order)
    block_pages = align * draw(st.integers(1, max(1, max_block_pages // align)))
    nr_blocks = draw(st.integers(*blocks))
    online_blocks = draw(st.integers(1, nr_blocks))
    fraction, scale = draw(sizings(online_blocks * block_pages))
    return Geometry(
        nr_blocks=nr_blocks,
        block_pages=block_pages,
        pageblock_order=pageblock_order,
        max_order=max_order,
        nr_cpus=draw(st.integers(*cpus)),
        fraction=fraction,
        sizing_scale=scale,
        online_blocks=None if online_blocks == nr_blocks else online_blocks,
    )


def boot_high_batch(geo: Geometry) -> tuple[int, int]:
    """The (high, batch) every CPU gets at boot in ``geo``."""
    managed = geo.initially_online * geo.block_pages * geo.sizing_scale
    return pageset_high_batch(managed, geo.fraction)
