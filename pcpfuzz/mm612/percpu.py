"""v6.12 ``struct per_cpu_pages`` and the zone's pageset cache (modern-kernels §1.1, §1.2,
§5.3): ``high`` is owner state between ``high_min`` and ``high_max``, which the updaters write;
``free_count``, ``alloc_factor`` and ``flags`` drive the auto-tuning; two THP lists."""

import attrs

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT, mt_name
from pcpfuzz.state import (
    NR_LOWORDER_PCP_LISTS,
    PAGE_ALLOC_COSTLY_ORDER,
    SpinLock,
    pindex_to_order,
)

NR_PCP_THP = 2
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + NR_PCP_THP
"""(e): 12 lists by (order <= 3, type), then THP for UNMOVABLE/RECLAIMABLE and for MOVABLE."""
PCP_BATCH_SCALE_MAX = 5
"""``CONFIG_PCP_BATCH_SCALE_MAX`` (default 5)."""
PCPF_PREV_FREE_HIGH_ORDER = 1
PCPF_FREE_HIGH_BATCH = 2


@attrs.define(slots=True, eq=False)
class PerCpuPages612:
    """v6.12 ``struct per_cpu_pages``. ``clamped`` is ghost state for PCP-HB: the owner has
    clamped ``high`` into ``[high_min, high_max]`` since the updaters last wrote them."""

    lock: SpinLock
    thp_order: int
    high: int = 0
    high_min: int = 0
    high_max: int = 0
    batch: int = 1
    count: int = 0
    free_count: int = 0
    alloc_factor: int = 0
    flags: int = 0
    clamped: bool = False
    lists: list[list[int]] = attrs.Factory(lambda: [[] for _ in range(NR_PCP_LISTS)])
    freed: bool = False
    """Ghost, as ``PerCpuPages.freed``: ``zone_pcp_reset`` freed it (``free_percpu``)."""

    def order_of(self, index: int) -> int:
        """``pindex_to_order``, as 6.1's."""
        return pindex_to_order(index, self.thp_order)

    def locked(self) -> bool:
        """Whether a task holds ``pcp->lock``, as 6.1's."""
        return self.lock.owner is not None

    def pindex(self, mt: int, order: int) -> int:
        """``order_to_pindex``: ``NR_LOWORDER_PCP_LISTS + movable`` for the THP order."""
        if order > PAGE_ALLOC_COSTLY_ORDER:
            return NR_LOWORDER_PCP_LISTS + (mt == MT.MOVABLE)
        return MIGRATE_PCPTYPES * order + mt

    def list_name(self, index: int) -> str:
        """List ``index`` in words: its order and type, or which THP list."""
        if index >= NR_LOWORDER_PCP_LISTS:
            kind = "MOVABLE" if index > NR_LOWORDER_PCP_LISTS else "UNMOVABLE/RECLAIMABLE"
            return f"THP {kind} (order {self.thp_order})"
        return f"order-{self.order_of(index)} {mt_name(index % MIGRATE_PCPTYPES)}"

    def state(self) -> tuple:
        """The pageset as a tuple, for fingerprints."""
        return (
            self.high,
            self.high_min,
            self.high_max,
            self.batch,
            self.count,
            self.free_count,
            self.alloc_factor,
            self.flags,
            self.clamped,
            tuple(map(tuple, self.lists)),
        )


@attrs.define(slots=True)
class ZonePageset612:
    """``zone->pageset_high_min``, ``pageset_high_max``, ``pageset_batch`` (§5.3)."""

    high_min: int = 0
    high_max: int = 0
    batch: int = 1

    def triple(self) -> tuple[int, int, int]:
        return self.high_min, self.high_max, self.batch
