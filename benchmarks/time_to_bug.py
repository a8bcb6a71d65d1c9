"""Time to bug: every profile with a known bug, every engine, many seeds.

For each (profile, engine) the table gives the detection rate within the per-seed budget, the
median and worst time to the first failure (before shrinking), the median shrink time and the
median of the two together, and the shrunk lengths against the shortest trace any engine or
seed of this run found for the same invariant ("shortest known").

    python benchmarks/time_to_bug.py              # 20 seeds, 10 s each (a few minutes)
    python benchmarks/time_to_bug.py --quick      # 2 seeds, v5.9-nofix only, 3 s budget
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import detection, engines, machine, median, save, seconds, show  # noqa: E402

from pcpfuzz.engines.base import budget_for  # noqa: E402
from pcpfuzz.ladder import geometry_for  # noqa: E402
from pcpfuzz.profiles import ZOO, get_profile  # noqa: E402

BUGGY = ("v5.9-nofix", *(p.name for p in ZOO))


def run(engine: str, profile: str, seed: int, budget_s: float) -> dict[str, object]:
    """One campaign, as a JSON-able row."""
    fn = engines([engine])[engine]
    c = fn(get_profile(profile), geometry_for(profile), seed, budget_for(engine, 10**9, budget_s))
    f = c.failure
    return {
        "profile": profile,
        "engine": engine,
        "seed": seed,
        "found": f is not None,
        "invariant": f.violation.invariant if f else None,
        "found_after": c.found_after,
        "shrink_seconds": c.shrink_seconds,
        "original_length": c.original_length,
        "length": len(f.actions) if f else None,
        "examples": c.examples,
        "model_steps": c.model_steps,
        "bound": c.bound,
        "trace": [str(a) for a in f.actions] if f else None,
    }


def summarize(rows: list[dict], budget_s: float) -> list[dict[str, object]]:
    """One summary per (profile, engine), with shrunk lengths against the shortest known."""
    shortest: dict[tuple[str, str], int] = {}
    for r in rows:
        if r["found"]:
            key = (r["profile"], r["invariant"])
            shortest[key] = min(shortest.get(key, 10**9), r["length"])
    out = []
    for profile in dict.fromkeys(r["profile"] for r in rows):
        for engine in dict.fromkeys(r["engine"] for r in rows):
            runs = [r for r in rows if r["profile"] == profile and r["engine"] == engine]
            if not runs:
                continue
            found = [r for r in runs if r["found"]]
            total = sorted(
                r["found_after"] + r["shrink_seconds"] if r["found"] else math.inf for r in runs
            )
            minimal = [r for r in found if r["length"] == shortest[(profile, r["invariant"])]]
            out.append(
                {
                    "profile": profile,
                    "engine": engine,
                    **detection(runs),
                    "median_shrink_seconds": median([r["shrink_seconds"] for r in found]),
                    "median_time_with_shrinking": median(total),
                    "lengths": dict(sorted(Counter(r["length"] for r in found).items())),
                    "shortest_known": {
                        inv: n for (p, inv), n in sorted(shortest.items()) if p == profile
                    },
                    "at_shortest": len(minimal),
                    "median_original_length": median([r["original_length"] for r in found]),
                    "bound": runs[0]["bound"],
                    "budget_seconds": budget_s,
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, v5.9-nofix only")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0, help="budget per seed")
    ap.add_argument("--engine", action="append", help="engine (repeatable; default: all)")
    ap.add_argument("--profile", action="append", help="profile (repeatable; default: buggy)")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    args = ap.parse_args(argv)
    started = machine()
    seeds, budget_s, profiles = args.seeds, args.seconds, args.profile or list(BUGGY)
    if args.quick:
        seeds, profiles = 2, args.profile or ["v5.9-nofix"]
        budget_s = min(budget_s, 3.0)
    names = list(engines(args.engine))
    rows = []
    for profile in profiles:
        for engine in names:
            for seed in range(seeds):
                row = run(engine, profile, seed, budget_s)
                rows.append(row)
                got = f"{row['invariant']} in {row['length']}" if row["found"] else "nothing"
                print(f"{profile} {engine} seed {seed}: {got}", file=sys.stderr, flush=True)
    summary = summarize(rows, budget_s)
    show(
        f"Time to bug ({seeds} seeds, {budget_s:g} s budget per seed)",
        (
            "profile",
            "engine",
            "detected",
            "invariants",
            "median TTF",
            "worst TTF",
            "median shrink",
            "median TTF+shrink",
            "shrunk lengths",
            "at shortest",
            "PCT bound",
        ),
        (
            (
                s["profile"],
                s["engine"],
                f"{s['detected']}/{s['seeds']}",
                " ".join(f"{k} {v}" for k, v in s["invariants"].items()) or "-",
                seconds(s["median_time_to_failure"]),
                seconds(s["worst_time_to_failure"]),
                seconds(s["median_shrink_seconds"]),
                seconds(s["median_time_with_shrinking"]),
                " ".join(f"{n}x{k}" for k, n in s["lengths"].items()) or "-",
                f"{s['at_shortest']}/{s['detected']} (shortest "
                + ", ".join(f"{k} {v}" for k, v in s["shortest_known"].items())
                + ")",
                f"{s['bound']:.1e}" if s["bound"] else "-",
            )
            for s in summary
        ),
    )
    save(
        "time_to_bug",
        {"seeds": seeds, "budget_seconds": budget_s, "summary": summary, "runs": rows},
        args.out,
        started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
