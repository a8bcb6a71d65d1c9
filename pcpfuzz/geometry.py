"""The shape of the modelled machine: one zone, its pageblocks and memory blocks, and the CPUs."""

import attrs

from pcpfuzz.constants import MT


def _positive(_inst: object, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be >= 1, not {value}")


@attrs.frozen
class Geometry:
    """One zone of ``nr_blocks`` memory blocks, ``nr_cpus`` CPUs, and the sizing inputs.

    ``max_order`` is the kernel's MAX_ORDER (orders 0..max_order-1). A memory block (the unit of
    online/offline) holds ``block_pages`` pages and must be MAX_ORDER- and pageblock-aligned.
    The sizing formulas of spec §8 are exact; ``sizing_scale`` multiplies the managed page count
    they see, and ``fraction`` is the boot value of ``vm.percpu_pagelist_fraction``, so that a
    small zone gets active pcplists without a changed formula.
    """

    nr_blocks: int = attrs.field(default=4, validator=_positive)
    block_pages: int = attrs.field(default=16, validator=_positive)
    pageblock_order: int = 2
    max_order: int = attrs.field(default=4, validator=_positive)
    nr_cpus: int = attrs.field(default=2, validator=_positive)
    fraction: int = 8
    sizing_scale: int = attrs.field(default=1, validator=_positive)
    online_blocks: int | None = None
    cma_pageblocks: tuple[int, ...] = ()
    movable_zone: bool = False
    pages_min: int | None = None
    """v6.1's model-scale ``min_free_kbytes >> 2`` (modern-kernels §5.6); None: managed // 32,
    recomputed by each ``init_per_zone_wmark_min``."""

    def __attrs_post_init__(self) -> None:
        align = max(self.max_order_nr_pages, self.pageblock_nr_pages)
        if self.block_pages % align:
            raise ValueError(
                f"block_pages {self.block_pages} is not a multiple of "
                f"max(MAX_ORDER_NR_PAGES, pageblock_nr_pages) = {align}"
            )
        if self.pageblock_order < 0 or self.pageblock_order > self.max_order - 1:
            raise ValueError(
                f"pageblock_order must be in 0..MAX_ORDER-1, not {self.pageblock_order}"
            )
        if self.fraction and self.fraction < 8:
            raise ValueError(f"fraction must be 0 or >= 8, not {self.fraction}")
        if not 0 <= self.initially_online <= self.nr_blocks:
            raise ValueError(f"online_blocks must be in 0..{self.nr_blocks}")
        for pb in self.cma_pageblocks:
            if not 0 <= pb < self.nr_pageblocks:
                raise ValueError(f"CMA pageblock {pb} is outside 0..{self.nr_pageblocks - 1}")
        self._check_cma_alignment(align // self.pageblock_nr_pages)

    def _check_cma_alignment(self, step: int) -> None:
        """Each CMA area starts and ends on a max(MAX_ORDER_NR_PAGES, pageblock_nr_pages) boundary.

        ``cma_init_reserved_mem`` (mm/cma.c, v5.10/v5.11) returns -EINVAL unless base and size are
        aligned to ``PAGE_SIZE << max(MAX_ORDER - 1, pageblock_order)``; ``step`` is that
        alignment in pageblocks. An area here is a maximal run of consecutive CMA pageblocks.
        """
        blocks = sorted(set(self.cma_pageblocks))
        runs: list[list[int]] = []
        for pb in blocks:
            if runs and runs[-1][1] == pb:
                runs[-1][1] = pb + 1
            else:
                runs.append([pb, pb + 1])
        for start, end in runs:
            if start % step or end % step:
                raise ValueError(
                    f"cma_pageblocks: area {start}..{end - 1} is not aligned to {step} pageblocks "
                    "(max(MAX_ORDER_NR_PAGES, pageblock_nr_pages))"
                )

    @property
    def pageblock_nr_pages(self) -> int:
        return 1 << self.pageblock_order

    @property
    def max_order_nr_pages(self) -> int:
        return 1 << (self.max_order - 1)

    @property
    def nr_pages(self) -> int:
        return self.nr_blocks * self.block_pages

    @property
    def nr_pageblocks(self) -> int:
        return self.nr_pages // self.pageblock_nr_pages

    @property
    def initially_online(self) -> int:
        return self.nr_blocks if self.online_blocks is None else self.online_blocks

    def block_range(self, block: int) -> tuple[int, int]:
        """The pfn range ``[start, end)`` of memory block ``block``."""
        return block * self.block_pages, (block + 1) * self.block_pages

    def boot_mt(self, pageblock: int) -> int:
        """The migratetype a pageblock has when its memory comes online."""
        return MT.CMA if pageblock in self.cma_pageblocks else MT.MOVABLE


DEFAULT_GEOMETRY = Geometry()
