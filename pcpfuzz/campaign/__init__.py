"""Campaigns on many cores and many machines: a ``pcpfuzz fuzz`` campaign cut into deterministic
work units (``units``), run on a Dask cluster (``cluster``), tallied per profile (``tally``) and
reported as the serial command reports (``cli``). Only ``cluster`` imports Dask."""

SCHEDULER_ENV = "PCPFUZZ_SCHEDULER"
"""The address of an existing Dask scheduler (``tcp://HOST:PORT``), as ``--scheduler``."""
