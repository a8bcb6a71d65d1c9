"""Choosing among the options enabled now with one stable choice.

A driver of the model must choose among what is enabled in the current state. Drawing from
the enabled list itself, or filtering, makes the number and meaning of Hypothesis's choices
depend on the state, so deleting an earlier step during shrinking shifts every later choice.
``stable_choice`` always makes exactly one choice, an index into a fixed list of options: the
option at that index when it is enabled, else the enabled options (in list order, repeats
kept) taken at the index modulo their number. A choice keeps its meaning whenever its option
stays enabled, the weights of disabled options spread evenly over the enabled ones, and a
choice shrinks towards the first option.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TypeVar

from hypothesis import strategies as st

T = TypeVar("T")


def pick(options: Sequence[T], index: int, allowed: Callable[[T], bool]) -> T:
    """``options[index]`` when it is ``allowed``, else the allowed options at ``index``
    modulo their number. Raises ``ValueError`` when none is allowed."""
    option = options[index]
    if allowed(option):
        return option
    enabled = [o for o in options if allowed(o)]
    if not enabled:
        raise ValueError("no option is allowed")
    return enabled[index % len(enabled)]


@lru_cache(maxsize=256)
def indices(n: int) -> st.SearchStrategy[int]:
    """An index into ``n`` options (one choice; built once per ``n``, as Hypothesis pays for
    every new strategy object)."""
    return st.integers(0, n - 1)


def stable_choice(options: Sequence[T], allowed: Callable[[T], bool]) -> st.SearchStrategy[T]:
    """One index into ``options``, mapped by ``pick``; at least one option must be allowed.
    Repeating an option in ``options`` weights it."""
    if len(options) == 1:
        return st.just(pick(options, 0, allowed))
    return indices(len(options)).map(lambda i: pick(options, i, allowed))
