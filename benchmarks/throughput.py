"""Throughput: native engine actions per second, and the cost of a Hypothesis-driven step.

Native: each engine runs on v5.11 (no known bug, so episodes run to their end) on the default
geometry, with every invariant checked after every action, as in a campaign. The same run is
repeated with no check at all (the model and the chooser alone) and with every check run in
full (``check(s, full=True)``), to show what the checks cost and what dominates.

Hypothesis: ``hypothesis_overhead.measure``, in the same run: the project's state machine on
v5.11, a trivial machine with the same rule shape, and the model alone replaying the machine's
traces; steps per second and the ratio of the costs of a step.

Profiles: seeded random walks on v5.11, v6.1 and v6.12, each on its campaign geometry, every check
after every action (``walk_rate``), so that v6.1, whose findings end every engine's episode
within a few actions, is measured beside v5.11 the same way.

    python benchmarks/throughput.py            # about two minutes
    python benchmarks/throughput.py --quick    # a few seconds
    python benchmarks/throughput.py --baseline 5cbe379   # + before/after against that commit

Before/after (``--baseline REV``, ``baseline``): here and at commit REV, alternately in one run,
the native campaigns' µs per action on v5.10 and v5.11 (issue 11: the cost of the quiescence
waits, PCP-UAF and the campaigns' populated zone), the native engines' episodes on v5.11, v6.1
and v6.12 with every check (issue 17: the chooser; and whether both sides drew the same
actions), and the Hypothesis step against the trivial machine's on each side (issue 17).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import engines, machine, save, show  # noqa: E402
from baseline import compare, compare_episodes, compare_hypothesis, exported  # noqa: E402
from hypothesis_overhead import measure, show_rows  # noqa: E402

import pcpfuzz.engines.native as native  # noqa: E402
from pcpfuzz.actions import Action  # noqa: E402
from pcpfuzz.engines.base import budget_for  # noqa: E402
from pcpfuzz.geometry import DEFAULT_GEOMETRY  # noqa: E402
from pcpfuzz.invariants import check  # noqa: E402
from pcpfuzz.ladder import geometry_for  # noqa: E402
from pcpfuzz.profiles import get_profile  # noqa: E402
from pcpfuzz.system import System  # noqa: E402

PROFILE = "v5.11"
MODES: dict[str, Callable] = {
    "incremental (default)": check,
    "full": lambda s: check(s, full=True),
    "none": lambda s: [],
}


def native_rate(engine: str, mode: str, seconds: float) -> dict[str, float]:
    """Actions and atomic steps per second of ``engine`` with the checks of ``mode``."""
    fn = engines([engine])[engine]
    steps = 0
    real_finish = native.finish

    def finishing(s: System) -> list:
        """Counts the episode's atomic steps before ``finish`` runs the system to rest."""
        nonlocal steps
        steps += s.steps
        return real_finish(s)

    native.check, native.finish = MODES[mode], finishing
    try:
        began = time.process_time()
        c = fn(get_profile(PROFILE), DEFAULT_GEOMETRY, 0, budget_for(engine, 10**9, seconds))
        cpu = time.process_time() - began
    finally:
        native.check, native.finish = check, real_finish
    assert c.failure is None, c.failure
    return {
        "actions": c.model_steps,
        "examples": c.examples,
        "cpu_seconds": cpu,
        "actions_per_second": c.model_steps / cpu,
        "atomic_steps_per_action": steps / max(c.model_steps, 1),
    }


WALK_PROFILES = ("v5.11", "v6.1", "v6.12")
"""Profiles compared by ``walk_rate``, each on its campaign geometry."""
WALK_STEPS = 25
BASELINE_CAMPAIGNS = [(e, p) for e in ("random", "pct") for p in ("v5.10", "v5.11")]
"""The campaigns ``--baseline`` compares (issue 11: the quiescence waits, PCP-UAF)."""
BASELINE_EPISODES = [(e, p) for e in ("random", "pct") for p in WALK_PROFILES]
"""The native engines' episodes ``--baseline`` compares (issue 17: the chooser)."""


def walk_rate(profile: str, seconds: float, seed: int = 0) -> dict[str, float]:
    """Actions per CPU second of seeded random walks of ``WALK_STEPS`` actions on ``profile``
    (its ``geometry_for``), every invariant checked after every action; a walk that breaks one
    (v6.1 has findings, so no engine runs its episodes to the end) starts a fresh system."""
    rng = random.Random(seed)
    p, geo = get_profile(profile), geometry_for(profile)
    actions = steps = walks = 0
    crashes: list[str] = []
    began = time.process_time()
    while time.process_time() - began < seconds:
        s = System(p, geo)
        walks += 1
        trace: list[Action] = []
        for _ in range(WALK_STEPS):
            enabled = s.enabled()
            if not enabled:
                break
            trace.append(rng.choice(enabled))
            try:
                s.apply(trace[-1])
            except Exception as e:  # a model crash is a finding: reported, not hidden
                crashes.append(f"{type(e).__name__}: {e} after {trace}")
                break
            actions += 1
            if check(s):
                break
        steps += s.steps
    cpu = time.process_time() - began
    return {
        "profile": profile,
        "walks": walks,
        "actions": actions,
        "actions_per_second": actions / cpu,
        "atomic_steps_per_action": steps / max(actions, 1),
        "model_crashes": len(crashes),
        "first_crash": crashes[0] if crashes else None,
    }


def before_after(rev: str, examples: int, steps: int, repeat: int) -> dict[str, object]:
    """Everything ``baseline`` measures here and at ``rev`` in one run, shown as tables: the
    native campaigns on v5.10 and v5.11 (µs per action), the native engines' episodes on
    ``WALK_PROFILES`` (actions/s, every check), the Hypothesis step (µs, ratio to trivial)."""
    with exported(rev) as base:
        campaigns = compare(rev, BASELINE_CAMPAIGNS, examples, repeat, base)
        episodes = compare_episodes(base, BASELINE_EPISODES, examples, repeat)
        hyp = compare_hypothesis(base, examples, steps, repeat)
    show(
        f"Before ({rev}) / after, campaigns, µs per action, {examples} examples, median of "
        f"{repeat}",
        ("engine", "profile", "before", "after", "after/before", "found (before, after)"),
        (
            (
                r["engine"],
                r["profile"],
                f"{r['us_per_action_before']:.1f}",
                f"{r['us_per_action_after']:.1f}",
                f"{r['ratio']:.2f}",
                f"{r['found_before'] or '-'}, {r['found_after'] or '-'}",
            )
            for r in campaigns
        ),
    )
    show(
        f"Before ({rev}) / after, episodes 0-{examples - 1} of seed 0, campaign geometry, every "
        f"check, actions per CPU second, median of {repeat}",
        ("engine", "profile", "actions", "before", "after", "speedup", "failed", "same actions"),
        (
            (
                r["engine"],
                r["profile"],
                str(r["actions"]),
                f"{r['actions_per_second_before']:,.0f}",
                f"{r['actions_per_second_after']:,.0f}",
                f"{r['speedup']:.2f}x",
                str(r["failed_episodes"]),
                "yes" if r["same_actions"] else "no",
            )
            for r in episodes
        ),
    )
    runs = ("project machine", "trivial machine", "model alone (replay)")
    show(
        f"Before ({rev}) / after, Hypothesis on {PROFILE}, {examples} examples x {steps} steps, "
        f"µs per step, median of {repeat}",
        ("run", "before", "after", "after/before"),
        [
            (
                name,
                f"{hyp['before']['us_per_step'][name]:.0f}",
                f"{hyp['after']['us_per_step'][name]:.0f}",
                f"{hyp['after']['us_per_step'][name] / hyp['before']['us_per_step'][name]:.2f}",
            )
            for name in runs
        ]
        + [
            (
                "project / trivial (same side)",
                f"{hyp['before']['ratio']:.2f}x",
                f"{hyp['after']['ratio']:.2f}x",
                "",
            )
        ],
    )
    return {"campaigns": campaigns, "episodes": episodes, "hypothesis": hyp}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    ap.add_argument("--seconds", type=float, default=5.0, help="per native measurement")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (median is kept)")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    ap.add_argument("--baseline", metavar="REV", help="also measure commit REV (before/after)")
    args = ap.parse_args(argv)
    started = machine()
    seconds, repeat, examples, steps = args.seconds, args.repeat, 100, 25
    if args.quick:
        seconds, repeat, examples, steps = 0.3, 1, 3, 10
    names = [n for n in ("random", "pct") if n in engines()]
    native_rows = []
    for engine in names:
        for mode in MODES:
            runs = [native_rate(engine, mode, seconds) for _ in range(repeat)]
            best = sorted(runs, key=lambda r: r["actions_per_second"])[len(runs) // 2]
            native_rows.append({"engine": engine, "checks": mode, **best})
    for row in native_rows:
        same = [r for r in native_rows if r["engine"] == row["engine"]]
        none = next(r for r in same if r["checks"] == "none")["actions_per_second"]
        row["checks_share_of_time"] = 1 - row["actions_per_second"] / none
    show(
        f"Native engines on {PROFILE}, default geometry (CPU time, median of {repeat})",
        (
            "engine",
            "invariant checks",
            "actions/s",
            "µs/action",
            "atomic steps/action",
            "share of time in checks",
        ),
        (
            (
                r["engine"],
                r["checks"],
                f"{r['actions_per_second']:,.0f}",
                f"{1e6 / r['actions_per_second']:.1f}",
                f"{r['atomic_steps_per_action']:.2f}",
                f"{r['checks_share_of_time']:.0%}",
            )
            for r in native_rows
        ),
    )
    walk_rows = []
    for profile in WALK_PROFILES:
        runs = [walk_rate(profile, seconds, seed) for seed in range(repeat)]
        walk_rows.append(sorted(runs, key=lambda r: r["actions_per_second"])[len(runs) // 2])
    base = walk_rows[0]["actions_per_second"]
    show(
        f"Random walks by profile, campaign geometry, every check (CPU time, median of {repeat})",
        (
            "profile",
            "actions/s",
            "µs/action",
            "atomic steps/action",
            f"vs {WALK_PROFILES[0]}",
            "model crashes",
        ),
        (
            (
                r["profile"],
                f"{r['actions_per_second']:,.0f}",
                f"{1e6 / r['actions_per_second']:.1f}",
                f"{r['atomic_steps_per_action']:.2f}",
                f"{r['actions_per_second'] / base:.2f}x",
                str(r["model_crashes"]),
            )
            for r in walk_rows
        ),
    )
    for r in walk_rows:
        if r["first_crash"]:
            print(f"{r['profile']}: the model crashed: {r['first_crash']}")
    runs = measure(examples, steps, repeat)
    title = f"Hypothesis steps ({examples} examples x {steps} steps, median of {repeat})"
    ratio, outside = show_rows(runs, title)
    hyp = {"runs": runs, "ratio": ratio, "share_outside_model": outside}
    data = {
        "profile": PROFILE,
        "native": native_rows,
        "walks": walk_rows,
        "hypothesis": hyp,
        "seconds": seconds,
    }
    if args.baseline:
        data["baseline"] = before_after(args.baseline, examples, steps, repeat)
    save("throughput", data, args.out, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
