"""Time to bug with the property suite: the ``hypothesis`` engine's pipeline on v5.9-nofix
(or other profiles) over many seeds.

Each seed runs the state machine (``stateful.runner``: default geometry, 25-action examples,
no database) until the first failure or the search budget, lets Hypothesis shrink for at most
``--shrink`` seconds, then runs the trace shrinker (``pcpfuzz.shrink``), as the engine does.
The table gives the detection rate, the median and worst time (and examples) to the first
failure, the length of the first failing example, of Hypothesis's shrunk one and of the final
one, and the shrink time; the JSON has every seed's row and traces.

``--baseline REV`` runs the same seeds with this tree's script and commit ``REV``'s (exported to
a temporary directory), one profile at a time alternately, and prints both side by side.

    python benchmarks/hypothesis_time_to_bug.py                 # 20 seeds of v5.9-nofix
    python benchmarks/hypothesis_time_to_bug.py --baseline 1e60c94 --seeds 10
    python benchmarks/hypothesis_time_to_bug.py --quick         # 2 seeds, small budgets
    python benchmarks/hypothesis_time_to_bug.py --profile v5.11-unforced-disable --seeds 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _against import both_sides, verified  # noqa: E402
from _common import detection, machine, median, save, seconds, show  # noqa: E402
from baseline import exported  # noqa: E402

from pcpfuzz.engines.base import Failure  # noqa: E402
from pcpfuzz.engines.hypothesis_engine import (  # noqa: E402
    EXAMPLE_STEPS,
    HYPOTHESIS_SHRINK_SECONDS,
    TRACE_SHRINK_SECONDS,
)
from pcpfuzz.ladder import geometry_for  # noqa: E402
from pcpfuzz.profiles import get_profile  # noqa: E402
from pcpfuzz.shrink import shrink  # noqa: E402
from pcpfuzz.trace import execute  # noqa: E402
from stateful.runner import run  # noqa: E402


def one_seed(profile: str, seed: int, budget_s: float, shrink_s: float) -> dict[str, object]:
    """One seed's search, Hypothesis shrink and trace shrink, as a JSON-able row."""
    p, geo = get_profile(profile), geometry_for(profile)
    r = run(
        p,
        geo,
        seed,
        max_examples=10**9,
        steps=EXAMPLE_STEPS,
        seconds=budget_s,
        shrink_seconds=shrink_s,
    )
    rec = r.recorder
    row: dict[str, object] = {
        "profile": profile,
        "seed": seed,
        "found": r.failure is not None,
        "examples": rec.examples,
        "model_steps": rec.model_steps,
        "found_after": r.found_after,
    }
    if r.failure is None or rec.first is None or r.found_after is None:
        return row
    hyp = Failure(p, geo, r.failure.actions, r.failure.violation, r.failure.at)
    began = time.perf_counter()
    final = shrink(hyp, deadline=time.monotonic() + TRACE_SHRINK_SECONDS)
    trace_shrink_s = time.perf_counter() - began
    out = execute(p, geo, final.actions)
    assert out.invariant == final.violation.invariant, (out, final.violation)
    row.update(
        {
            "invariant": final.violation.invariant,
            "original_length": len(rec.first.actions),
            "hypothesis_length": len(hyp.actions),
            "hypothesis_shrink_seconds": r.seconds - r.found_after,
            "hypothesis_shrink_examples": rec.shrink_examples,
            "hypothesis_shrink_capped": rec.stopped,
            "length": len(final.actions),
            "trace_shrink_seconds": trace_shrink_s,
            "trace": [str(a) for a in final.actions],
        }
    )
    return row


def summary(rows: list[dict]) -> dict[str, object]:
    found = [r for r in rows if r["found"]]
    return {
        **detection(rows),
        "median_examples_to_failure": median([r["examples"] for r in found]),
        "original_lengths": sorted(r["original_length"] for r in found),
        "hypothesis_lengths": sorted(r["hypothesis_length"] for r in found),
        "lengths": sorted(r["length"] for r in found),
        "median_hypothesis_shrink_seconds": median([r["hypothesis_shrink_seconds"] for r in found]),
        "median_trace_shrink_seconds": median([r["trace_shrink_seconds"] for r in found]),
    }


def against(rev: str, profiles: list[str], n: int, budget_s: float, shrink_s: float) -> dict:
    """This tree's and ``rev``'s script on the same seeds, alternately; printed side by side."""
    chunks = [
        ["--profile", p, "--seeds", str(n), "--budget", str(budget_s), "--shrink", str(shrink_s)]
        for p in profiles
    ]
    with exported(rev) as base:
        results = both_sides(base, "hypothesis_time_to_bug.py", chunks)
    rows = {
        p: {side: per[side]["summaries"][p] for side in per}
        for p, per in zip(profiles, results, strict=True)
    }

    def pair(s: dict, key: str, fmt=str) -> str:
        return f"{fmt(s['before'][key])} / {fmt(s['after'][key])}"

    def shrink_time(side: dict) -> str:
        both = side["median_hypothesis_shrink_seconds"] + side["median_trace_shrink_seconds"]
        return seconds(both)

    show(
        f"hypothesis engine, before ({rev}) / after: {n} seeds ({budget_s:g} s search, "
        f"Hypothesis shrink at most {shrink_s:g} s, then pcpfuzz.shrink)",
        ("profile", "detected", "median ttf", "median examples", "final lengths", "median shrink"),
        (
            (
                p,
                f"{s['before']['detected']}/{n} / {s['after']['detected']}/{n}",
                pair(s, "median_time_to_failure", seconds),
                pair(s, "median_examples_to_failure"),
                pair(s, "lengths"),
                f"{shrink_time(s['before'])} / {shrink_time(s['after'])}",
            )
            for p, s in rows.items()
        ),
    )
    return {"baseline": rev, "seeds": n, "budget_seconds": budget_s, "summaries": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", action="append", help="profile (repeatable; v5.9-nofix)")
    ap.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1")
    ap.add_argument("--budget", type=float, default=60.0, help="search seconds per seed")
    ap.add_argument(
        "--shrink", type=float, default=HYPOTHESIS_SHRINK_SECONDS, help="Hypothesis shrink cap"
    )
    ap.add_argument("--quick", action="store_true", help="2 seeds, 5 s budgets")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    ap.add_argument("--baseline", metavar="REV", help="also run commit REV's, side by side")
    args = ap.parse_args(argv)
    started = machine()
    profiles = args.profile or ["v5.9-nofix"]
    n, budget_s, shrink_s = args.seeds, args.budget, args.shrink
    if args.quick:
        n, budget_s, shrink_s = 2, 5.0, 2.0
    if args.baseline:
        data = against(verified(args.baseline), profiles, n, budget_s, shrink_s)
        save("hypothesis_time_to_bug_baseline", data, args.out, started)
        return 0
    rows, summaries = [], {}
    for profile in profiles:
        these = []
        for seed in range(n):
            row = one_seed(profile, seed, budget_s, shrink_s)
            these.append(row)
            print(
                f"{profile} seed {seed}: "
                + (
                    f"{row['invariant']} after {row['found_after']:.1f} s "
                    f"({row['examples']} examples), {row['original_length']} -> "
                    f"{row['hypothesis_length']} (Hypothesis) -> {row['length']} actions"
                    if row["found"]
                    else f"nothing in {budget_s:g} s ({row['examples']} examples)"
                ),
                flush=True,
            )
        rows += these
        summaries[profile] = summary(these)
    show(
        f"hypothesis engine: time to bug over {n} seeds ({budget_s:g} s search, Hypothesis "
        f"shrink at most {shrink_s:g} s, then pcpfuzz.shrink)",
        (
            "profile",
            "detected",
            "median ttf",
            "worst ttf",
            "median examples",
            "first lengths",
            "Hypothesis-shrunk",
            "final lengths",
            "median shrink (H + trace)",
        ),
        (
            (
                p,
                f"{s['detected']}/{s['seeds']}",
                seconds(s["median_time_to_failure"]),
                seconds(s["worst_time_to_failure"]),
                s["median_examples_to_failure"],
                s["original_lengths"],
                s["hypothesis_lengths"],
                s["lengths"],
                seconds(s["median_hypothesis_shrink_seconds"] + s["median_trace_shrink_seconds"]),
            )
            for p, s in summaries.items()
        ),
    )
    save(
        "hypothesis_time_to_bug",
        {
            "budget_seconds": budget_s,
            "shrink_seconds": shrink_s,
            "summaries": summaries,
            "rows": rows,
        },
        args.out,
        started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
