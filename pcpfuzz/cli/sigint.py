"""Ctrl-C that cannot be lost: SIGINT raises ``KeyboardInterrupt`` at once, as Python's own
handler does, and again at every later progress report. Python drops an exception raised in a
finalizer (a task generator the garbage collector closes, a weak reference's callback), so a
SIGINT landing in one would otherwise let the campaign run on to its time limit."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class StickyInterrupt:
    """Whether SIGINT came; ``check`` raises ``KeyboardInterrupt`` once it has."""

    def __init__(self) -> None:
        self.seen = False

    def handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.seen:
            raise KeyboardInterrupt


@contextmanager
def sticky_sigint() -> Iterator[StickyInterrupt]:
    """Install a ``StickyInterrupt`` as the SIGINT handler for the block."""
    sticky = StickyInterrupt()
    previous = signal.signal(signal.SIGINT, sticky.handle)
    try:
        yield sticky
    finally:
        signal.signal(signal.SIGINT, previous)
