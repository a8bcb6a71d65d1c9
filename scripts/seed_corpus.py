#!/usr/bin/env python3
"""Seed the counterexample corpus from the fuzzer: run the native engines on a profile over a
range of seeds, and save, for each invariant broken, the shortest shrunk failure that replays as
recorded (in particular, that passes on the profiles that fix the bug). Native engines only:
their seeds reproduce with any Hypothesis version.

    python scripts/seed_corpus.py --profile v5.9-nofix --engine random --seeds 0-19

Every campaign is listed, with the reason a failure was not kept (a longer trace for the same
invariant, or a trace that does not pass where the bug is fixed: not enabled there, or failing
there). Deterministic for a given engine, seed and ``--max-examples`` (the time limit is a
safety net, set high so that it does not bind).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pcpfuzz.corpus import FoundBy, make_entry, save_failure
from pcpfuzz.engines import pct, random_walk  # noqa: F401  (they register themselves)
from pcpfuzz.engines.base import ENGINES, Budget, Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import get_profile
from pcpfuzz.replay import replay_entry

ROOT = Path(__file__).resolve().parent.parent


def seed_range(text: str) -> range:
    """``3`` or ``0-19`` (inclusive)."""
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="v5.9-nofix")
    ap.add_argument(
        "--engine", action="append", choices=("random", "pct"), help="repeatable; default: both"
    )
    ap.add_argument("--seeds", type=seed_range, default=seed_range("0-9"))
    ap.add_argument("--max-examples", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=Budget().steps, help="actions per example")
    ap.add_argument("--seconds", type=float, default=600.0, help="safety limit per campaign")
    ap.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    ap.add_argument("--dry-run", action="store_true", help="report, save nothing")
    args = ap.parse_args()

    profile = get_profile(args.profile)
    budget = Budget(max_examples=args.max_examples, seconds=args.seconds, steps=args.steps)
    best: dict[str, tuple[Failure, FoundBy]] = {}
    print("engine  seed  examples  found         length  shrunk  replay")
    for name in args.engine or ["random", "pct"]:
        for seed in args.seeds:
            c = ENGINES[name](profile, Geometry(), seed, budget)
            f = c.failure
            if f is None:
                print(f"{name:<7} {seed:>4}  {c.examples:>8}  -")
                continue
            found_by = FoundBy(name, seed)
            result = replay_entry(make_entry(f.profile, f.geometry, f.actions, found_by))
            verdict = (
                "ok"
                if result.ok
                else "; ".join(f"{d.profile}: {d.actual}" for d in result.divergences)
            )
            inv = f.violation.invariant
            print(
                f"{name:<7} {seed:>4}  {c.examples:>8}  {inv:<12}  {c.original_length:>6}"
                f"  {len(f.actions):>6}  {verdict}"
            )
            if result.ok and (inv not in best or len(f.actions) < len(best[inv][0].actions)):
                best[inv] = (f, found_by)
    for inv, (f, found_by) in sorted(best.items()):
        where = "(dry run)" if args.dry_run else save_failure(f, args.corpus, found_by)
        print(f"{inv}: {len(f.actions)} actions, {found_by.engine} seed {found_by.seed} {where}")
    return 0 if best else 1


if __name__ == "__main__":
    sys.exit(main())
