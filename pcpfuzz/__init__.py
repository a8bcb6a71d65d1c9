"""pcpfuzz: property-based fuzzing of the page allocator's pcplists, isolation and offline."""

__version__ = "0.1.0"
