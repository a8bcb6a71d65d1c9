"""What a broken invariant reports."""

import attrs


@attrs.frozen
class Violation:
    """An invariant (spec §15) that failed, with a message naming the pfn, CPU, list or counter."""

    invariant: str
    message: str

    def __str__(self) -> str:
        return f"{self.invariant} violated: {self.message}"


class Hang(Exception):
    """An atomic step that would loop forever in the kernel (the HANG invariant)."""
