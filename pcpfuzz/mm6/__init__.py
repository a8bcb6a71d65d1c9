"""The v6.1 kernel (6.1.0 as released, modern-kernels.md (d)): one module per concern, with the
kernel's function names. ``pcpfuzz.kernels`` selects these functions once, for the ``v6.1``
profile; shared buddy primitives come from ``pcpfuzz.mm``."""
