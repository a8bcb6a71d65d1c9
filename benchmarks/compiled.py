"""The compiled build against pure Python: actions per CPU second of each, in one run.

Needs the compiled build installed in this tree (``PCPFUZZ_COMPILE=1 pip install -e .``).
Each repetition runs, in a fresh process per build and alternating (so that both see the same
load), what ``throughput.py`` measures with every check after every action:

- the native engines (random, pct) on v5.11, default geometry, as in a campaign;
- ``throughput.walk_rate``: seeded random walks on v5.11, v6.1 and v6.12 (campaign geometry).

The pure side is the same tree with ``PCPFUZZ_BUILD=pure``; the compiled side runs with
``PCPFUZZ_BUILD=compiled``, so an out-of-date build is an error, never a silent pure run.

    python benchmarks/compiled.py --seconds 2 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import engines, machine, median, save, show  # noqa: E402
from throughput import PROFILE, WALK_PROFILES, walk_rate  # noqa: E402

BUILDS = ("pure", "compiled")
NATIVE = ("random", "pct")


def native_rate(engine: str, seconds: float) -> float:
    """Actions per CPU second of ``engine`` on ``PROFILE`` with every check (its default)."""
    from pcpfuzz.engines.base import budget_for
    from pcpfuzz.geometry import DEFAULT_GEOMETRY
    from pcpfuzz.profiles import get_profile

    fn = engines([engine])[engine]
    began = time.process_time()
    c = fn(get_profile(PROFILE), DEFAULT_GEOMETRY, 0, budget_for(engine, 10**9, seconds))
    cpu = time.process_time() - began
    assert c.failure is None, c.failure
    return c.model_steps / cpu


def repetition(seconds: float, seed: int) -> dict[str, object]:
    """One repetition in this process: its build and each row's actions per CPU second."""
    import pcpfuzz

    rates = {f"{e} {PROFILE}": native_rate(e, seconds) for e in NATIVE}
    for profile in WALK_PROFILES:
        rates[f"walk {profile}"] = walk_rate(profile, seconds, seed)["actions_per_second"]
    return {"build": pcpfuzz.BUILD.describe(), "rates": rates}


def run_build(build: str, seconds: float, seed: int) -> dict[str, object]:
    """``repetition`` in a fresh process with ``PCPFUZZ_BUILD=build``."""
    env = {**os.environ, "PCPFUZZ_BUILD": build}
    argv = [sys.executable, __file__, "--worker", "--seconds", str(seconds), "--seed", str(seed)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        sys.exit(f"compiled.py: the {build} build failed: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (median is kept)")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(repetition(args.seconds, args.seed)))
        return 0
    started = machine()
    reps: dict[str, list[dict]] = {b: [] for b in BUILDS}
    for seed in range(args.repeat):
        for build in BUILDS:
            reps[build].append(run_build(build, args.seconds, seed))
    rows = []
    for name in reps["pure"][0]["rates"]:
        pure, compiled = (median([r["rates"][name] for r in reps[b]]) for b in BUILDS)
        rows.append({"run": name, "pure": pure, "compiled": compiled, "ratio": compiled / pure})
    builds = {b: reps[b][0]["build"] for b in BUILDS}
    show(
        f"Pure Python / compiled (mypyc), every check, actions per CPU second, median of "
        f"{args.repeat}",
        ("run", "pure", "compiled", "compiled/pure"),
        (
            (r["run"], f"{r['pure']:,.0f}", f"{r['compiled']:,.0f}", f"{r['ratio']:.2f}x")
            for r in rows
        ),
    )
    for build, describe in builds.items():
        print(f"{build}: {describe}")
    save("compiled", {"builds": builds, "rows": rows, "repetitions": reps}, args.out, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
