"""Sleeping locks (``mutex_lock``/``mutex_unlock``) and waits, as generators that yield while
blocked (spec §14.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.state import Mutex, MutexWait, Task, TaskGen, Wait

if TYPE_CHECKING:
    from pcpfuzz.system import System


def mutex_lock(s: System, t: Task, m: Mutex) -> TaskGen:
    """``mutex_lock``: sleep until ``m`` is free, then take it. Taking a lock the task already
    holds is a self-deadlock, reported as LOCK-ORDER."""
    if m.owner == t.tid:
        s.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} takes {m.name}, which it already holds")
    while m.owner is not None:
        yield MutexWait(m)
    m.owner = t.tid
    return None


def mutex_unlock(s: System, t: Task, m: Mutex) -> None:
    """``mutex_unlock``."""
    if m.owner != t.tid:
        s.bug("LOCK-ORDER", f"CPU{t.cpu} {t.op} releases {m.name}, held by task {m.owner}")
    m.owner = None


def wait_until(s: System, w: Wait) -> TaskGen:
    """Sleep until ``w`` is ready."""
    while not w.ready(s):
        yield w
    return None
