"""The model of the kernel's mm/ code: one module per kernel area, kernel names throughout."""
