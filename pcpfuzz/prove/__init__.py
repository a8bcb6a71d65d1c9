"""``pcpfuzz prove``: bounded exhaustive search of every schedule of a small configuration."""
