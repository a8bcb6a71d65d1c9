"""Time to bug: every profile with a known bug, every engine, many seeds.

For each (profile, engine) the table gives the detection rate within the per-seed budget, the
median and worst time to the first failure (before shrinking), the median shrink time and the
median of the two together (for the native engines, CPU time of the finding process: the
engine's clock is ``time.process_time`` here), and the shrunk lengths against the shortest
trace any engine or seed of this run found for the same invariant ("shortest known").

``--baseline REV`` runs the same seeds with this tree's script and with commit ``REV``'s
(exported to a temporary directory, where this script replaces its own so that both sides
measure alike), one (profile, engine) at a time alternately, and prints
each figure of both side by side, with the median episodes to the first failure.

    python benchmarks/time_to_bug.py              # 20 seeds, 10 s each (a few minutes)
    python benchmarks/time_to_bug.py --quick      # 2 seeds, v5.9-nofix only, 3 s budget
    python benchmarks/time_to_bug.py --profile v5.9-nofix --engine random --baseline 1e60c94
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _against import both_sides, verified  # noqa: E402
from _common import detection, engines, machine, median, save, seconds, show  # noqa: E402
from baseline import exported  # noqa: E402

from pcpfuzz.engines import native  # noqa: E402
from pcpfuzz.engines.base import budget_for  # noqa: E402
from pcpfuzz.ladder import geometry_for  # noqa: E402
from pcpfuzz.profiles import ZOO, get_profile  # noqa: E402

BUGGY = ("v5.9-nofix", *(p.name for p in ZOO))


@contextmanager
def cpu_clock() -> Iterator[None]:
    """The native engines' ``perf_counter`` (budget, time to failure, shrink time) reads this
    process's CPU time; the shrink deadline stays on ``time.monotonic``, as the shrinker's."""
    saved = native.time
    native.time = SimpleNamespace(perf_counter=time.process_time, monotonic=time.monotonic)  # type: ignore[assignment]
    try:
        yield
    finally:
        native.time = saved


def run(engine: str, profile: str, seed: int, budget_s: float) -> dict[str, object]:
    """One campaign, as a JSON-able row."""
    fn = engines([engine])[engine]
    with cpu_clock():
        c = fn(
            get_profile(profile), geometry_for(profile), seed, budget_for(engine, 10**9, budget_s)
        )
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


def _episodes(result: dict, profile: str, engine: str) -> float:
    """Median episodes (examples) to the first failure of one side's found runs."""
    runs = result["runs"]
    return median([r["examples"] for r in runs if r["found"] and r["engine"] == engine])


def against(rev: str, profiles: list[str], names: list[str], seeds: int, budget_s: float) -> dict:
    """This tree's and ``rev``'s script on the same seeds, alternately; printed side by side."""
    chunks = [
        ["--profile", p, "--engine", e, "--seeds", str(seeds), "--seconds", str(budget_s)]
        for p in profiles
        for e in names
    ]
    with exported(rev) as base:
        (base / "benchmarks" / "time_to_bug.py").write_text(Path(__file__).read_text())
        results = both_sides(base, "time_to_bug.py", chunks)
    rows = []
    for chunk, per in zip(chunks, results, strict=True):
        profile, engine = chunk[1], chunk[3]
        b, a = (per[side]["summary"][0] for side in ("before", "after"))
        rows.append(
            {
                "profile": profile,
                "engine": engine,
                "before": b,
                "after": a,
                "episodes_before": _episodes(per["before"], profile, engine),
                "episodes_after": _episodes(per["after"], profile, engine),
            }
        )

    def pair(r: dict, key: str) -> str:
        return f"{seconds(r['before'][key])} / {seconds(r['after'][key])}"

    def ratio(r: dict, key: str) -> str:
        return f"{r['after'][key] / r['before'][key]:.2f}"

    show(
        f"Time to bug, before ({rev}) / after ({seeds} seeds, {budget_s:g} s budget per seed)",
        (
            "profile",
            "engine",
            "detected",
            "median episodes",
            "median TTF",
            "TTF after/before",
            "median TTF+shrink",
            "shrunk lengths",
        ),
        (
            (
                r["profile"],
                r["engine"],
                f"{r['before']['detected']}/{r['before']['seeds']} / "
                f"{r['after']['detected']}/{r['after']['seeds']}",
                f"{r['episodes_before']:g} / {r['episodes_after']:g}",
                pair(r, "median_time_to_failure"),
                ratio(r, "median_time_to_failure"),
                pair(r, "median_time_with_shrinking"),
                " ".join(f"{n}x{k}" for k, n in r["before"]["lengths"].items())
                + " / "
                + " ".join(f"{n}x{k}" for k, n in r["after"]["lengths"].items()),
            )
            for r in rows
        ),
    )
    return {"baseline": rev, "seeds": seeds, "budget_seconds": budget_s, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds, v5.9-nofix only")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0, help="budget per seed")
    ap.add_argument("--engine", action="append", help="engine (repeatable; default: all)")
    ap.add_argument("--profile", action="append", help="profile (repeatable; default: buggy)")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    ap.add_argument("--baseline", metavar="REV", help="also run commit REV's, side by side")
    args = ap.parse_args(argv)
    started = machine()
    seeds, budget_s, profiles = args.seeds, args.seconds, args.profile or list(BUGGY)
    if args.quick:
        seeds, profiles = 2, args.profile or ["v5.9-nofix"]
        budget_s = min(budget_s, 3.0)
    names = list(engines(args.engine))
    if args.baseline:
        data = against(verified(args.baseline), profiles, names, seeds, budget_s)
        save("time_to_bug_baseline", data, args.out, started)
        return 0
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
