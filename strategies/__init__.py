"""Hypothesis strategies for pcpfuzz: geometries, profiles and operation arguments."""

from strategies.choice import pick, stable_choice
from strategies.geometry import boot_high_batch, geometries, sizings
from strategies.operations import (
    arguments,
    contig_alignment,
    contig_ranges,
    contig_starts,
    fractions,
    memory_blocks,
    migratetypes,
    orders,
)
from strategies.profiles import profiles, versions

__all__ = [
    "arguments",
    "boot_high_batch",
    "contig_alignment",
    "contig_ranges",
    "contig_starts",
    "fractions",
    "geometries",
    "memory_blocks",
    "migratetypes",
    "orders",
    "pick",
    "profiles",
    "sizings",
    "stable_choice",
    "versions",
]
