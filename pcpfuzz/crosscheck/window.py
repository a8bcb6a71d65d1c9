"""The offline window: does the sequence of (high, batch) readings a poller saw during a real
``offline_pages()`` fit the model's run of ``offline_pages`` on the same block?

The model's values are its own (its sizing rule at the kernel's zone size); to compare orders of
events rather than formulas, each model value is first replaced by the kernel's value in the same
role: the value before the call, the value after it, or the boot/disabled pageset (0, 1). The
kernel's readings then fit when

* they start with the model's first state and end with its last,
* they are a subsequence of the model's states (a poller can miss short-lived states, not invent
  or reorder them), and
* the disabled state, (0, 1) on every CPU, was seen exactly when the model goes through it
  (v5.11 on: for the whole isolation and migration; v5.10: never).

On 6.12, whose ``pageset_update`` writes ``high_min``, ``high_max`` and ``batch`` but not the
auto-tuned ``pcp->high`` (modern-kernels §5.3, §6.1), only the batches are compared
(:func:`batch_view`): the disabled state is batch 1 on every CPU.

On 6.1, whose pcp high follows the low watermark, readings between the disabled window
and the final values that already carry the final batch are dropped first: ``offline_pages()``
ends with ``init_per_zone_wmark_min()``, which computes the watermarks twice (with
``calculate_min_free_kbytes()``'s square-root value, then again after
``khugepaged_min_free_kbytes_update()`` raises ``min_free_kbytes``), and each pass ends with
``zone_pcp_update()`` of every zone. The ``v6.1`` profile computes them once (its ``pages_min``
is a model-scale knob, modern-kernels §5.6, not the two-pass ``min_free_kbytes``), so its run
cannot show the first pass's short-lived high (seen once in about 25 runs as ``74/7`` before
``880/7``).
"""

from collections.abc import Sequence

from pcpfuzz.crosscheck.snapshot import Pair
from pcpfuzz.mm.sizing import BOOT_PAGESET_BATCH, BOOT_PAGESET_HIGH

State = tuple[Pair, ...]
"""Every CPU's (high, batch) at one moment."""

DISABLED: Pair = (BOOT_PAGESET_HIGH, BOOT_PAGESET_BATCH)
UNKNOWN = -1
"""A model value that has no kernel counterpart (never equal to a kernel reading)."""
NOT_COMPARED = -2
"""The high of a :func:`batch_view` reading."""


def collapse(states: Sequence[State]) -> tuple[State, ...]:
    """Drop consecutive repeats."""
    out: list[State] = []
    for state in states:
        if not out or out[-1] != state:
            out.append(state)
    return tuple(out)


def is_subsequence(short: Sequence[State], long: Sequence[State]) -> bool:
    """Whether ``short`` appears in ``long`` in order (not necessarily contiguously)."""
    it = iter(long)
    return all(any(x == y for y in it) for x in short)


def translate(
    model: Sequence[State], kernel_before: State, kernel_after: State
) -> tuple[State, ...]:
    """Replace each model value by the kernel's value in the same role (see the module doc)."""
    highs = {BOOT_PAGESET_HIGH: BOOT_PAGESET_HIGH}
    batches = {BOOT_PAGESET_BATCH: BOOT_PAGESET_BATCH}
    for model_state, kernel_state in ((model[0], kernel_before), (model[-1], kernel_after)):
        for (mh, mb), (kh, kb) in zip(model_state, kernel_state, strict=True):
            highs[mh] = kh
            batches[mb] = kb
    return tuple(
        tuple((highs.get(h, UNKNOWN), batches.get(b, UNKNOWN)) for h, b in state) for state in model
    )


def batch_view(states: Sequence[State]) -> tuple[State, ...]:
    """The states with every high replaced by ``NOT_COMPARED``, repeats dropped."""
    return collapse([tuple((NOT_COMPARED, b) for _h, b in state) for state in states])


def is_disabled(state: State) -> bool:
    """Every CPU reads the disabled pageset (0, 1), or batch 1 in a :func:`batch_view`."""
    return all(pair in (DISABLED, (NOT_COMPARED, BOOT_PAGESET_BATCH)) for pair in state)


def drop_wmark_transients(kernel: Sequence[State]) -> tuple[State, ...]:
    """The kernel's readings without the watermark-recompute transients (see the module doc):
    states after the last disabled reading, before the final one, whose batches are final."""
    disabled = [i for i, state in enumerate(kernel) if is_disabled(state)]
    if not disabled:
        return tuple(kernel)
    final = kernel[-1]

    def transient(i: int, state: State) -> bool:
        return (
            disabled[-1] < i < len(kernel) - 1
            and len(state) == len(final)
            and all(b == fb for (_h, b), (_fh, fb) in zip(state, final, strict=True))
        )

    return collapse([state for i, state in enumerate(kernel) if not transient(i, state)])


def window_fits(kernel: Sequence[State], model: Sequence[State]) -> bool:
    """Whether the kernel's collapsed readings fit the model's translated, collapsed states."""
    if not kernel or not model:
        return False
    return (
        kernel[0] == model[0]
        and kernel[-1] == model[-1]
        and is_subsequence(kernel, model)
        and any(map(is_disabled, kernel)) == any(map(is_disabled, model))
    )


def _pair_text(pair: Pair) -> str:
    if UNKNOWN in pair:
        return "?"
    return f"*/{pair[1]}" if pair[0] == NOT_COMPARED else f"{pair[0]}/{pair[1]}"


def describe(states: Sequence[State], counts: Sequence[int] | None = None) -> str:
    """``1564/15 x27 -> 0/1 x31 -> 880/7 x24``; a state whose CPUs differ reads ``0/1|1564/15``,
    a reading with no pagesets ``none``."""
    parts = []
    for i, state in enumerate(states):
        texts = [_pair_text(pair) for pair in state]
        text = "none" if not texts else texts[0] if len(set(texts)) == 1 else "|".join(texts)
        parts.append(f"{text} x{counts[i]}" if counts else text)
    return " -> ".join(parts)
