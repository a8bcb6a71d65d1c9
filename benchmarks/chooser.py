"""The chooser's cost: CPU µs per action spent choosing, and actions per CPU second.

Each native engine (random, pct) runs the first episodes of seed 0 on v5.11, v6.1 and v6.12,
each on its campaign geometry, with every check after every action, as in a campaign; the
policy's calls (the chooser: ``SteeredChooser``, PCT's schedule) are timed apart from the rest.
A digest of the actions drawn tells whether two trees drew the same sequence.

    python benchmarks/chooser.py                     # about a minute
    python benchmarks/chooser.py --quick             # a few seconds
    python benchmarks/chooser.py --baseline 40fd18b  # + before/after against that commit

``--baseline REV``: this script (copied into REV's exported tree when REV has none) runs on
REV's packages and on this tree's, alternately, one (engine, profile) at a time, ``--repeat``
times over (``_against.both_sides``); the medians are over those processes (one process's
speed varies with its memory layout and hash seed as much as a small change would).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _against import both_sides, verified  # noqa: E402
from _common import machine, median, save, show  # noqa: E402
from baseline import exported  # noqa: E402

from pcpfuzz.actions import Action  # noqa: E402
from pcpfuzz.engines.base import budget_for  # noqa: E402
from pcpfuzz.engines.native import episode_rng, run_episode  # noqa: E402
from pcpfuzz.engines.pct import pct_policy  # noqa: E402
from pcpfuzz.engines.random_walk import _policy  # noqa: E402
from pcpfuzz.ladder import geometry_for  # noqa: E402
from pcpfuzz.ops import campaign_keeps_populated  # noqa: E402
from pcpfuzz.profiles import get_profile  # noqa: E402
from pcpfuzz.system import System  # noqa: E402

ENGINES = ("random", "pct")
PROFILES = ("v5.11", "v6.1", "v6.12")


def episodes(engine: str, profile: str, examples: int) -> dict[str, object]:
    """The first ``examples`` episodes of seed 0: actions, CPU seconds in all and in the policy,
    and a digest of the actions."""
    p, geo = get_profile(profile), geometry_for(profile)
    make = {"random": _policy, "pct": pct_policy()}[engine]
    budget = budget_for(engine, examples, 1e9)
    clock = time.process_time
    chooser = 0.0
    actions = 0
    digest = hashlib.sha256()
    began = clock()
    for i in range(examples):
        s = System(p, geo, keep_populated=campaign_keeps_populated(p))
        policy = make(s, episode_rng(engine, 0, i), budget)

        def timed(s: System, policy=policy) -> Action | None:
            nonlocal chooser
            t0 = clock()
            action = policy(s)
            chooser += clock() - t0
            return action

        done, _failure = run_episode(s, timed, budget.steps)
        actions += len(done)
        digest.update(repr(done).encode())
    return {
        "actions": actions,
        "cpu": clock() - began,
        "chooser": chooser,
        "digest": digest.hexdigest()[:16],
    }


def row(engine: str, profile: str, runs: list[dict]) -> dict[str, object]:
    """Medians of ``runs`` (one tree's repetitions of one engine on one profile)."""
    return {
        "engine": engine,
        "profile": profile,
        "actions": runs[0]["actions"],
        "chooser_us_per_action": median(1e6 * r["chooser"] / max(r["actions"], 1) for r in runs),
        "actions_per_second": median(r["actions"] / r["cpu"] for r in runs),
        "digest": runs[0]["digest"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    ap.add_argument("--examples", type=int, default=100, help="episodes per measurement")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (median is kept)")
    ap.add_argument("--baseline", metavar="REV", help="also measure commit REV (before/after)")
    ap.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--profile", choices=PROFILES, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    args = ap.parse_args(argv)
    started = machine()
    examples, repeat = (3, 1) if args.quick else (args.examples, args.repeat)
    if args.engine and args.profile:  # one chunk, run by _against.run_script on either tree
        runs = [episodes(args.engine, args.profile, examples) for _ in range(repeat)]
        save("chooser", row(args.engine, args.profile, runs), args.out, started)
        return 0
    cases = [(e, p) for e in ENGINES for p in PROFILES]
    title = f"Chooser, episodes 0-{examples - 1} of seed 0, every check, median of {repeat}"
    if not args.baseline:
        rows = [row(e, p, [episodes(e, p, examples) for _ in range(repeat)]) for e, p in cases]
        show(
            title,
            ("engine", "profile", "actions", "chooser µs/action", "actions/s"),
            (
                (
                    r["engine"],
                    r["profile"],
                    str(r["actions"]),
                    f"{r['chooser_us_per_action']:.1f}",
                    f"{r['actions_per_second']:,.0f}",
                )
                for r in rows
            ),
        )
        save("chooser", {"rows": rows}, args.out, started)
        return 0
    rev = verified(args.baseline)
    with exported(rev) as base:
        mine = base / "benchmarks" / "chooser.py"
        if not mine.exists():
            shutil.copy(Path(__file__), mine)
        flags = ["--examples", str(examples), "--repeat", "1"]
        chunks = [[*flags, "--engine", e, "--profile", p] for _ in range(repeat) for e, p in cases]
        results = both_sides(base, "chooser.py", chunks)
    rows = []
    for i in range(len(cases)):
        runs = results[i :: len(cases)]
        before, after = (
            {
                **runs[0][side],
                **{
                    k: median(r[side][k] for r in runs)
                    for k in ("chooser_us_per_action", "actions_per_second")
                },
            }
            for side in ("before", "after")
        )
        rows.append(
            {
                "engine": after["engine"],
                "profile": after["profile"],
                "actions": after["actions"],
                "chooser_us_before": before["chooser_us_per_action"],
                "chooser_us_after": after["chooser_us_per_action"],
                "chooser_ratio": after["chooser_us_per_action"] / before["chooser_us_per_action"],
                "actions_per_second_before": before["actions_per_second"],
                "actions_per_second_after": after["actions_per_second"],
                "speedup": after["actions_per_second"] / before["actions_per_second"],
                "same_actions": before["digest"] == after["digest"],
            }
        )
    show(
        f"Before ({rev}) / after, {title.lower()}",
        (
            "engine",
            "profile",
            "actions",
            "chooser µs/action before",
            "after",
            "after/before",
            "actions/s before",
            "after",
            "speedup",
            "same actions",
        ),
        (
            (
                r["engine"],
                r["profile"],
                str(r["actions"]),
                f"{r['chooser_us_before']:.1f}",
                f"{r['chooser_us_after']:.1f}",
                f"{r['chooser_ratio']:.2f}",
                f"{r['actions_per_second_before']:,.0f}",
                f"{r['actions_per_second_after']:,.0f}",
                f"{r['speedup']:.2f}x",
                "yes" if r["same_actions"] else "no",
            )
            for r in rows
        ),
    )
    save("chooser", {"baseline": rev, "rows": rows}, args.out, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
