"""Throughput: native engine actions per second, and the cost of a Hypothesis-driven step.

Native: each engine runs on v5.11 (no known bug, so episodes run to their end) on the default
geometry, with every invariant checked after every action, as in a campaign. The same run is
repeated with no check at all (the model and the chooser alone) and with every check run in
full (``check(s, full=True)``), to show what the checks cost and what dominates.

Hypothesis: the project's state machine (``stateful.machine``) on v5.11 and a trivial machine
(one rule that adds an integer, one invariant), the same examples and steps, in the same run;
steps per second and the ratio of the costs of a step.

    python benchmarks/throughput.py            # about two minutes
    python benchmarks/throughput.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import engines, machine, save, show  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

import pcpfuzz.engines.native as native  # noqa: E402
from pcpfuzz.engines.base import budget_for  # noqa: E402
from pcpfuzz.geometry import DEFAULT_GEOMETRY  # noqa: E402
from pcpfuzz.invariants import check  # noqa: E402
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
    real_apply = System.apply

    def counted(s: System, action: object) -> None:
        nonlocal steps
        before = s.steps
        real_apply(s, action)
        steps += s.steps - before

    native.check, System.apply = MODES[mode], counted  # type: ignore[method-assign]
    try:
        began = time.process_time()
        c = fn(get_profile(PROFILE), DEFAULT_GEOMETRY, 0, budget_for(engine, 10**9, seconds))
        cpu = time.process_time() - began
    finally:
        native.check, System.apply = check, real_apply  # type: ignore[method-assign]
    assert c.failure is None, c.failure
    return {
        "actions": c.model_steps,
        "examples": c.examples,
        "cpu_seconds": cpu,
        "actions_per_second": c.model_steps / cpu,
        "atomic_steps_per_action": steps / max(c.model_steps, 1),
    }


class Trivial(RuleBasedStateMachine):
    """The cheapest useful state machine: one rule, one invariant."""

    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    @rule(x=st.integers(0, 10))
    def add(self, x: int) -> None:
        Trivial.steps += 1
        self.total += x

    @invariant()
    def non_negative(self) -> None:
        assert self.total >= 0


def _ours() -> tuple[type[RuleBasedStateMachine], str]:
    """The project's state machine on v5.11, if the property suite is installed."""
    try:
        from stateful.machine import machine_for
    except ImportError as e:  # pragma: no cover - the suite ships with the repository
        sys.exit(f"the property suite (stateful/) is not importable: {e}")
    return machine_for(get_profile(PROFILE)), "stateful.machine.machine_for(v5.11)"


def hypothesis_rate(
    machine: type[RuleBasedStateMachine], examples: int, steps: int
) -> tuple[float, float]:
    """Seconds per state-machine step (derandomized, generation only, no database), and the
    part of it spent in the model: ``System.apply``, the invariant checks and ``finish``."""
    import stateful.machine as sm

    counted = 0
    model = 0.0
    real = {"apply": System.apply, "check": sm.check, "finish": sm.finish}

    def timed(fn: Callable, counts: bool = False) -> Callable:
        def wrapper(*args: object) -> object:
            nonlocal counted, model
            counted += counts
            began = time.perf_counter()
            try:
                return fn(*args)
            finally:
                model += time.perf_counter() - began

        return wrapper

    Trivial.steps = 0
    run_settings = settings(
        max_examples=examples,
        stateful_step_count=steps,
        database=None,
        deadline=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    System.apply = timed(real["apply"], counts=True)  # type: ignore[method-assign]
    sm.check, sm.finish = timed(real["check"]), timed(real["finish"])
    try:
        began = time.perf_counter()
        run_state_machine_as_test(machine, settings=run_settings)
        elapsed = time.perf_counter() - began
    finally:
        System.apply = real["apply"]  # type: ignore[method-assign]
        sm.check, sm.finish = real["check"], real["finish"]
    n = max(counted + Trivial.steps, 1)
    return elapsed / n, model / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    ap.add_argument("--seconds", type=float, default=5.0, help="per native measurement")
    ap.add_argument("--repeat", type=int, default=3, help="repetitions (median is kept)")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    args = ap.parse_args(argv)
    started = machine()
    seconds, repeat, examples, steps = args.seconds, args.repeat, 30, 50
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
    ours, label = _ours()
    samples: dict[str, list[tuple[float, float]]] = {"ours": [], "trivial": []}
    for _ in range(repeat):
        samples["ours"].append(hypothesis_rate(ours, examples, steps))
        samples["trivial"].append(hypothesis_rate(Trivial, examples, steps))
    ours_s, ours_model = sorted(samples["ours"])[len(samples["ours"]) // 2]
    trivial_s = statistics.median(t for t, _ in samples["trivial"])
    hyp = {
        "machine": label,
        "examples": examples,
        "steps_per_example": steps,
        "ours_seconds_per_step": ours_s,
        "ours_model_seconds_per_step": ours_model,
        "trivial_seconds_per_step": trivial_s,
        "ours_steps_per_second": 1 / ours_s,
        "trivial_steps_per_second": 1 / trivial_s,
        "ratio": ours_s / trivial_s,
        "ratio_without_model": (ours_s - ours_model) / trivial_s,
        "samples": samples,
    }
    show(
        f"Hypothesis steps ({examples} examples x {steps} steps, wall time, median of {repeat})",
        ("machine", "steps/s", "µs/step", "of which the model", "ratio to trivial"),
        [
            (
                label,
                f"{1 / ours_s:,.0f}",
                f"{ours_s * 1e6:.0f}",
                f"{ours_model * 1e6:.0f} (apply, checks, finish)",
                f"{ours_s / trivial_s:.2f}x ({hyp['ratio_without_model']:.2f}x without the model)",
            ),
            (
                "trivial (one rule, one invariant)",
                f"{1 / trivial_s:,.0f}",
                f"{trivial_s * 1e6:.0f}",
                "-",
                "1.00x",
            ),
        ],
    )
    save(
        "throughput",
        {"profile": PROFILE, "native": native_rows, "hypothesis": hyp, "seconds": seconds},
        args.out,
        started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
