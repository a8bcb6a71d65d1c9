"""The offline-window sequence logic."""

from pcpfuzz.crosscheck.window import (
    NOT_COMPARED,
    UNKNOWN,
    batch_view,
    collapse,
    describe,
    drop_wmark_transients,
    is_subsequence,
    translate,
    window_fits,
)

A = ((90, 15), (90, 15))
OFF = ((0, 1), (0, 1))
B = ((42, 7), (42, 7))
TORN = ((0, 1), (90, 15))


def test_collapse_and_subsequence() -> None:
    assert collapse([A, A, OFF, OFF, B]) == (A, OFF, B)
    assert is_subsequence((A, B), (A, TORN, OFF, B))
    assert not is_subsequence((B, A), (A, OFF, B))


def test_translate_maps_roles() -> None:
    model = (A, TORN, OFF, ((90, 7), (42, 7)), B)
    kernel_before = ((1564, 15), (1564, 15))
    kernel_after = ((880, 7), (880, 7))
    out = translate(model, kernel_before, kernel_after)
    assert out[0] == kernel_before
    assert out[1] == ((0, 1), (1564, 15))
    assert out[2] == OFF
    assert out[3] == ((1564, 7), (880, 7))
    assert out[-1] == kernel_after
    assert translate((A, ((5, 3), (5, 3)), B), A, B)[1] == ((UNKNOWN, UNKNOWN),) * 2


def test_window_fits() -> None:
    v511 = (A, TORN, OFF, A, B)
    v510 = (A, ((90, 1), (90, 15)), B)
    assert window_fits((A, OFF, B), v511)
    assert not window_fits((A, B), v511)  # the disabled window was not seen
    assert window_fits((A, B), v510)
    assert not window_fits((A, OFF, B), v510)
    assert not window_fits((B, A), v510)
    assert not window_fits((), v510)


def test_describe() -> None:
    assert describe((A, OFF), [3, 4]) == "90/15 x3 -> 0/1 x4"
    assert describe((TORN, ((UNKNOWN, UNKNOWN),))) == "0/1|90/15 -> ?"
    assert describe(((),)) == "none"


def test_wmark_transients_dropped_only_after_the_window() -> None:
    pre = ((1564, 15), (1564, 15))
    post = ((880, 7), (880, 7))
    first_pass = ((74, 7), (74, 7))
    assert drop_wmark_transients((pre, OFF, first_pass, post)) == (pre, OFF, post)
    assert drop_wmark_transients((pre, OFF, pre, first_pass, post)) == (pre, OFF, pre, post)
    # Not after a disabled window, or not the final batch: kept.
    assert drop_wmark_transients((pre, first_pass, post)) == (pre, first_pass, post)
    odd = ((74, 3), (74, 3))
    assert drop_wmark_transients((pre, OFF, odd, post)) == (pre, OFF, odd, post)


def test_batch_view() -> None:
    # 6.12: the disabled pageset is batch 1 on every CPU, whatever the (stale) highs read.
    stale = ((476, 1), (4096, 1))
    after = ((403, 7), (353, 7))
    seq = batch_view((((476, 15), (4096, 15)), stale, ((476, 1), (0, 1)), after, ((1, 7), (2, 7))))
    assert seq == (
        ((NOT_COMPARED, 15),) * 2,
        ((NOT_COMPARED, 1),) * 2,
        ((NOT_COMPARED, 7),) * 2,
    )
    assert describe(seq) == "*/15 -> */1 -> */7"
    assert window_fits(seq, batch_view((A, TORN, OFF, B)))
    assert not window_fits(batch_view((A, B)), batch_view((A, TORN, OFF, B)))
