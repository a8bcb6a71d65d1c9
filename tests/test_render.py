"""The kernel-style rendering of a trace: structured lines, folding, the plain text."""

from pcpfuzz.actions import Run, RunWork, Start, Step
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import get_profile
from pcpfuzz.render import Fold, TraceLine, fold, format_plain, render
from pcpfuzz.trace import END, execute

# The spec §15.1 race on the default geometry: pfn 56 (memory block 3) is allocated, its free
# caches MOVABLE, offline isolates block 3 and drains while the free is in flight, then the
# free commits to CPU0's pcplist.
RACE = (
    Start(0, "alloc_pages", (0, 1)),
    Step(0),
    Start(0, "free_pages", (56,)),
    Start(1, "offline_pages", (3,)),
    Run(1),
    RunWork(0),
    Run(1),
    Step(0),
)


def test_lines_carry_their_action_cpu_and_order():
    actions = (Start(0, "alloc_pages", (0, 1)), Step(0))
    r = render(get_profile("v5.10"), Geometry(), actions)
    assert r.outcome.passed
    assert [(line.index, line.cpu) for line in r.lines[:3]] == [(0, 0), (1, 0), (1, 0)]
    assert r.lines[0].text == "alloc_pages(order 0, MOVABLE)"
    assert all(line.action == actions[line.index] for line in r.lines if line.index != END)
    text = format_plain(r)
    assert text[0] == f"#0   {actions[0]}"
    assert text[1] == "    CPU0  alloc_pages(order 0, MOVABLE)"
    assert text[-1] == "every invariant holds"


def test_a_violation_after_an_action_ends_the_rendering():
    r = render(get_profile("v5.9-nofix"), Geometry(), RACE)
    assert r.outcome.invariant == "ISO-PCP" and r.outcome.at == 7
    last = r.lines[-1]
    assert (last.index, last.action, last.cpu) == (7, RACE[7], None)
    assert last.text == str(r.outcome.violation)
    text = format_plain(r)
    assert text[-3] == f"#7   {RACE[7]}"
    assert "free_unref_page_commit(pfn 56)" in text[-2]
    assert text[-1].strip().startswith("ISO-PCP violated: pfn 56")
    assert not any(t.startswith("-- at rest") for t in text)


def test_coming_to_rest_is_split_from_the_last_action():
    """Without the final commit the free is still in flight: the race ends in OFFLINE-TERM at
    rest, and the lines ``finish`` logs sit under their own header, not under action 6."""
    actions = RACE[:-1]
    r = render(get_profile("v5.9-nofix"), Geometry(), actions)
    assert r.outcome.invariant == "OFFLINE-TERM" and r.outcome.at == END
    plain = execute(get_profile("v5.9-nofix"), Geometry(), actions)
    assert plain == r.outcome
    rest = [line for line in r.lines if line.index == END]
    assert rest[0].action is None
    assert any("free_unref_page_commit" in line.text for line in rest)
    assert not any("free_unref_page_commit" in line.text for line in r.lines if line.index != END)
    text = format_plain(r)
    assert text.index("-- at rest (every task run to completion, each offline alone) --") > (
        text.index(f"#6   {RACE[6]}")
    )
    assert text[-1].strip().startswith("OFFLINE-TERM violated")


def test_retry_loops_fold():
    r = render(get_profile("v5.9-nofix"), Geometry(), RACE)
    assert any(
        "test_pages_isolated" in t and t.endswith("]") and "[x" in t for t in format_plain(r)
    )
    assert len(format_plain(r)) < len(r.lines)


def _line(text: str) -> TraceLine:
    return TraceLine(0, None, 1, text)


def test_fold_takes_single_lines_and_blocks():
    a, b, c, d = map(_line, "abcd")
    assert fold([a, a, a, b]) == [Fold((a,), 3), Fold((b,), 1)]
    assert fold([d, a, b, c, a, b, c, a, b, c, d]) == [
        Fold((d,), 1),
        Fold((a, b, c), 3),
        Fold((d,), 1),
    ]
    assert fold([a, b, a, c]) == [Fold((a,), 1), Fold((b,), 1), Fold((a,), 1), Fold((c,), 1)]


def test_fold_does_not_merge_lines_of_different_cpus_or_actions():
    a = _line("x")
    assert fold([a, TraceLine(0, None, 0, "x"), TraceLine(1, None, 1, "x")]) == [
        Fold((a,), 1),
        Fold((TraceLine(0, None, 0, "x"),), 1),
        Fold((TraceLine(1, None, 1, "x"),), 1),
    ]
