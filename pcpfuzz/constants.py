"""Kernel enums and constants the model uses (spec §1)."""

from enum import IntEnum


class MT(IntEnum):
    """Migrate types, in the kernel's enum order (spec §1.1)."""

    UNMOVABLE = 0
    MOVABLE = 1
    RECLAIMABLE = 2
    HIGHATOMIC = 3
    CMA = 4
    ISOLATE = 5


MIGRATE_PCPTYPES = 3
MIGRATE_TYPES = 6
SWAP_CLUSTER_MAX = 32

# Return codes, as the kernel's negative errno values.
EINTR = -4
EBUSY = -16
EINVAL = -22
ENOENT = -2

# __rmqueue_fallback order (spec §1.2). CMA and ISOLATE are never fallback sources.
FALLBACKS: dict[int, tuple[int, int]] = {
    MT.UNMOVABLE: (MT.RECLAIMABLE, MT.MOVABLE),
    MT.MOVABLE: (MT.RECLAIMABLE, MT.UNMOVABLE),
    MT.RECLAIMABLE: (MT.UNMOVABLE, MT.MOVABLE),
}


def mt_name(mt: int) -> str:
    """The kernel-style short name of a migratetype, e.g. ``MOVABLE``."""
    return MT(mt).name
