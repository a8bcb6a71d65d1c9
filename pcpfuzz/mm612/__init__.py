"""The v6.12 kernel (6.12.0 as released, modern-kernels.md (e)): one module per concern, with the
kernel's function names. What 6.12 shares with 6.1 is imported from ``pcpfuzz.mm6``."""
