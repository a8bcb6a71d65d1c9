"""What ``pcpfuzz prove`` prints: the configuration, the verdict with what was covered, the
bounds that cut something, and the progress line."""

from __future__ import annotations

from pcpfuzz.prove.explore import Bounds, Proof, Stats


def covered(st: Stats) -> str:
    """States, transitions, depth, leaves and speed, in one phrase."""
    return (
        f"{st.states} states, {st.transitions} transitions, depth {st.depth}, "
        f"{st.leaves} states checked at rest, in {st.seconds:.1f} s ({st.rate:,.0f} states/s)"
    )


def cuts(st: Stats, b: Bounds) -> str:
    """Which bounds stopped part of the search, or that none did."""
    parts = []
    if st.cut_preemptions:
        parts.append(f"{st.cut_preemptions} transitions over {b.preemptions} preemptions")
    if st.cut_depth:
        parts.append(f"{st.cut_depth} states at depth {b.depth}")
    if st.cut_retries:
        parts.append(f"{st.cut_retries} states at {b.retries} retry-loop passes")
    if not parts:
        return "no bound cut anything: every schedule of these operations is covered"
    return "bounds cut: " + "; ".join(parts)


def verdict_line(p: Proof, b: Bounds) -> str:
    """The first line of the verdict."""
    st = p.stats
    if p.verdict == "proved":
        return f"proved within the bounds: {covered(st)}"
    if p.verdict == "limit":
        return (
            f"not proved: {p.limit} stopped the search after exploring {covered(st)}; "
            f"{st.frontier} states were left unexplored"
        )
    assert p.failure is not None
    return f"violation after {covered(st)}: {p.failure.violation}"


def progress_line(st: Stats) -> str:
    """The live line shown on a terminal."""
    return (
        f"{st.states:>9,} states  {st.rate:>7,.0f} states/s  frontier {st.frontier:>7,}  "
        f"depth {st.depth:>4}  {st.seconds:>6.1f} s"
    )
