"""Scaling: the test suite with ``pytest -n auto`` against ``-n 0``, the native engines in
one and two worker processes (total examples and actions per second), and ``pcpfuzz fuzz
--workers 1`` and ``--workers 2`` (Dask) against the serial ``pcpfuzz fuzz``.

The engines share nothing between seeds, so a campaign parallelises by running seeds in
separate processes; the table shows what the machine's cores give.

    python benchmarks/scaling.py            # the suite twice, then 10 s per engine run
    python benchmarks/scaling.py --quick    # engines only, 0.2 s each; campaigns 1 s each
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, engines, machine, save, show  # noqa: E402

from pcpfuzz.engines.base import budget_for  # noqa: E402
from pcpfuzz.geometry import DEFAULT_GEOMETRY  # noqa: E402
from pcpfuzz.profiles import get_profile  # noqa: E402

PROFILE = "v5.11"


def suite(workers: str) -> dict[str, object]:
    """Wall time of the test suite with ``pytest -n workers``."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", workers],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    tail = done.stdout.strip().splitlines()[-1:] or [""]
    return {
        "workers": workers,
        "seconds": time.perf_counter() - began,
        "exit": done.returncode,
        "summary": tail[0],
    }


def _campaign(job: tuple[str, int, float]) -> tuple[int, int]:
    engine, seed, seconds = job
    fn = engines([engine])[engine]
    c = fn(get_profile(PROFILE), DEFAULT_GEOMETRY, seed, budget_for(engine, 10**9, seconds))
    return c.examples, c.model_steps


def parallel(engine: str, processes: int, seconds: float) -> dict[str, object]:
    """``processes`` campaigns of ``seconds`` each (different seeds), run at once."""
    jobs = [(engine, seed, seconds) for seed in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        pool.map(_campaign, [(engine, 0, 0.05)] * processes)  # warm the workers up
        began = time.perf_counter()
        results = pool.map(_campaign, jobs)
        wall = time.perf_counter() - began
    examples = sum(e for e, _ in results)
    actions = sum(a for _, a in results)
    return {
        "engine": engine,
        "processes": processes,
        "wall_seconds": wall,
        "examples": examples,
        "actions": actions,
        "examples_per_second": examples / wall,
        "actions_per_second": actions / wall,
    }


def fuzz_command(workers: int | None, seconds: float) -> dict[str, object]:
    """``pcpfuzz fuzz`` on ``PROFILE`` for ``seconds``, serial or on ``workers`` (its JSON row;
    a distributed row's seconds start once the workers are up)."""
    cluster = [] if workers is None else ["--workers", str(workers)]
    done = subprocess.run(
        [str(Path(sys.executable).with_name("pcpfuzz")), "fuzz", "--profile", PROFILE]
        + ["--time", str(seconds), "--json", *cluster],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        sys.exit(f"pcpfuzz fuzz failed: {done.stderr.strip()}")
    row = json.loads(done.stdout.splitlines()[-1])
    return {
        "workers": workers,
        "seconds": row["seconds"],
        "examples": row["examples"],
        "actions": row["model_steps"],
        "actions_per_second": row["model_steps"] / row["seconds"],
    }


def campaigns(seconds: float) -> list[dict[str, object]]:
    """The serial command, then ``--workers 1`` and ``--workers 2``; ratios to the serial."""
    rows = [fuzz_command(w, seconds) for w in (None, 1, 2)]
    for r in rows:
        r["ratio"] = r["actions_per_second"] / rows[0]["actions_per_second"]
    show(
        f"pcpfuzz fuzz --profile {PROFILE} --time {seconds:g}, serial and on Dask workers",
        ("run", "examples", "actions/s", "vs serial"),
        (
            (
                "serial" if r["workers"] is None else f"--workers {r['workers']}",
                r["examples"],
                f"{r['actions_per_second']:,.0f}",
                f"{r['ratio']:.2f}x",
            )
            for r in rows
        ),
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="engines only, tiny budgets")
    ap.add_argument("--seconds", type=float, default=10.0, help="per engine campaign")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    args = ap.parse_args(argv)
    started = machine()
    seconds = 0.2 if args.quick else args.seconds
    suites = [] if args.quick else [suite("0"), suite("auto")]
    if suites:
        serial = suites[0]["seconds"]
        show(
            f"Test suite (pytest, {os.cpu_count()} CPUs)",
            ("workers", "wall time", "speedup", "result"),
            (
                (
                    f"-n {r['workers']}",
                    f"{r['seconds']:.1f} s",
                    f"{serial / r['seconds']:.2f}x",
                    r["summary"],
                )
                for r in suites
            ),
        )
    rows = []
    for engine in [n for n in ("random", "pct") if n in engines()]:
        for processes in (1, 2):
            rows.append(parallel(engine, processes, seconds))
    single = {r["engine"]: r["actions_per_second"] for r in rows if r["processes"] == 1}
    for r in rows:
        r["speedup"] = r["actions_per_second"] / single[r["engine"]]
    show(
        f"Native engines on {PROFILE}, {seconds:g} s campaigns in parallel processes",
        ("engine", "processes", "examples/s", "actions/s", "speedup"),
        (
            (
                r["engine"],
                r["processes"],
                f"{r['examples_per_second']:,.0f}",
                f"{r['actions_per_second']:,.0f}",
                f"{r['speedup']:.2f}x",
            )
            for r in rows
        ),
    )
    fuzz_rows = campaigns(1.0 if args.quick else 2 * args.seconds)
    data = {"suite": suites, "engines": rows, "campaigns": fuzz_rows, "seconds": seconds}
    save("scaling", data, args.out, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
