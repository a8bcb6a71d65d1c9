"""pcpfuzz: property-based fuzzing of the page allocator's pcplists, isolation and offline."""

from pcpfuzz.build import activate

__version__ = "0.1.0"
BUILD = activate()
"""The build this process runs: compiled (mypyc) or pure Python (``pcpfuzz.build``)."""
