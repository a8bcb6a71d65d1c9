"""Hypothesis overhead: steps per second of the property suite's state machine against a
trivial state machine of the same shape, in the same run, and of the model alone.

Each repetition runs, with the same seed, settings and number of examples and steps
(generation only, no database): the project's machine on v5.11 (no known bug, so every example
runs to its end) on the default geometry; the trivial machine, one rule of the signature the
project machine had until issue 17 (two integer choices and ``st.data()``) that adds an
integer, and one invariant: the fixed reference of the ratio; the same trivial machine with one
integer choice (the project machine's signature since); and a replay of the project machine's
traces through ``pcpfuzz.trace.execute`` (the model, every invariant after every action,
``finish`` at the end) without Hypothesis. The table keeps the median of the repetitions; the
ratio is the project machine's time per step over the trivial one's.

``--baseline REV`` measures the same in this tree and in commit ``REV``'s (exported to a
temporary directory, ``benchmarks/baseline.py``), alternately, and prints both sides.

    python benchmarks/hypothesis_overhead.py                      # about a minute
    python benchmarks/hypothesis_overhead.py --baseline 1e60c94   # both trees, a few minutes
    python benchmarks/hypothesis_overhead.py --quick              # a few seconds
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine, save, show  # noqa: E402
from baseline import compare_hypothesis, exported  # noqa: E402
from hypothesis import HealthCheck, Phase, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from pcpfuzz.actions import Action  # noqa: E402
from pcpfuzz.geometry import DEFAULT_GEOMETRY  # noqa: E402
from pcpfuzz.profiles import get_profile  # noqa: E402
from pcpfuzz.trace import execute  # noqa: E402
from stateful.kinds import CHOICES  # noqa: E402
from stateful.machine import ARG_CHOICES, STEP_CHOICES, PcpMachine, machine_for  # noqa: E402

PROFILE = "v5.11"
ONE_INT = "trivial machine, one integer"


class Trivial(RuleBasedStateMachine):
    """The project machine's rule signature, doing nothing worth measuring."""

    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    @rule(
        choice=st.integers(0, len(CHOICES) - 1),
        arg=st.integers(0, ARG_CHOICES - 1),
        data=st.data(),
    )
    def act(self, choice: int, arg: int, data: st.DataObject) -> None:
        Trivial.steps += 1
        self.total += choice + arg

    @invariant()
    def non_negative(self) -> None:
        assert self.total >= 0


class TrivialOneInt(RuleBasedStateMachine):
    """The trivial machine with the project machine's one-integer rule signature."""

    steps = 0

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    @rule(step=st.integers(0, STEP_CHOICES - 1))
    def act(self, step: int) -> None:
        TrivialOneInt.steps += 1
        self.total += step

    @invariant()
    def non_negative(self) -> None:
        assert self.total >= 0


class Traces:
    """Observer of the project machine: keeps each example's actions."""

    def __init__(self) -> None:
        self.traces: list[tuple[Action, ...]] = []

    def started(self, m: PcpMachine) -> None:
        pass

    def failed(self, m: PcpMachine, violation: object, at: int) -> None:
        raise AssertionError(f"{PROFILE} failed: {violation}")

    def ended(self, m: PcpMachine) -> None:
        self.traces.append(tuple(m.trace))


def timed_run(cls: type[RuleBasedStateMachine], rep: int, examples: int, steps: int) -> float:
    """Wall seconds of one generation-only run of ``cls`` with seed ``rep``."""
    chosen = settings(
        max_examples=examples,
        stateful_step_count=steps,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    seed(rep)(cls)
    began = time.perf_counter()
    run_state_machine_as_test(cls, settings=chosen)
    return time.perf_counter() - began


def repetition(rep: int, examples: int, steps: int) -> dict[str, dict[str, float]]:
    """One repetition: seconds and steps of each of the three runs."""
    traces = Traces()
    ours = machine_for(get_profile(PROFILE), DEFAULT_GEOMETRY, traces)
    ours_s = timed_run(ours, rep, examples, steps)
    ours_steps = sum(map(len, traces.traces))
    Trivial.steps = TrivialOneInt.steps = 0
    trivial_s = timed_run(Trivial, rep, examples, steps)
    one_int_s = timed_run(TrivialOneInt, rep, examples, steps)
    began = time.perf_counter()
    for actions in traces.traces:
        execute(get_profile(PROFILE), DEFAULT_GEOMETRY, actions)
    model_s = time.perf_counter() - began
    return {
        "project machine": {"seconds": ours_s, "steps": ours_steps},
        "trivial machine": {"seconds": trivial_s, "steps": Trivial.steps},
        ONE_INT: {"seconds": one_int_s, "steps": TrivialOneInt.steps},
        "model alone (replay)": {"seconds": model_s, "steps": ours_steps},
    }


def measure(examples: int, steps: int, repeat: int) -> dict[str, dict[str, float]]:
    """Median steps, steps/s and µs/step of each run over ``repeat`` repetitions."""
    reps = [repetition(rep, examples, steps) for rep in range(repeat)]
    rows = {}
    for name in reps[0]:
        rates = [r[name]["steps"] / r[name]["seconds"] for r in reps]
        rows[name] = {
            "steps": statistics.median(r[name]["steps"] for r in reps),
            "steps_per_second": statistics.median(rates),
            "us_per_step": 1e6 / statistics.median(rates),
        }
    return rows


def show_rows(rows: dict[str, dict[str, float]], title: str) -> tuple[float, float]:
    """Print the runs and the ratio; return (project/trivial ratio, share outside the model)."""
    ours, trivial = rows["project machine"], rows["trivial machine"]
    ratio = ours["us_per_step"] / trivial["us_per_step"]
    outside = 1 - rows["model alone (replay)"]["us_per_step"] / ours["us_per_step"]
    show(
        title,
        ("run", "steps", "steps/s", "µs/step"),
        (
            (name, f"{r['steps']:.0f}", f"{r['steps_per_second']:,.0f}", f"{r['us_per_step']:.0f}")
            for name, r in rows.items()
        ),
    )
    print(
        f"project machine / trivial machine: {ratio:.2f}x the time per step "
        f"({ours['us_per_step'] / rows[ONE_INT]['us_per_step']:.2f}x the one-integer one's); "
        f"outside the model (Hypothesis and the machine's choosing): {outside:.0%} of a step"
    )
    return ratio, outside


def show_baseline(rev: str, hyp: dict[str, dict], title: str) -> None:
    """Print µs per step here and at ``rev`` (``compare_hypothesis``) and each side's ratio."""
    before, after = hyp["before"]["us_per_step"], hyp["after"]["us_per_step"]

    def us(side: dict[str, float], name: str) -> str:
        return f"{side[name]:.0f}" if name in side else "-"

    show(
        f"Before ({rev}) / after: {title}",
        ("run", "before", "after", "after/before"),
        [
            (
                name,
                us(before, name),
                us(after, name),
                f"{after[name] / before[name]:.2f}" if name in before else "-",
            )
            for name in after
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=100, help="examples per run")
    ap.add_argument("--steps", type=int, default=25, help="steps per example")
    ap.add_argument("--repeat", type=int, default=5, help="repetitions (the median is kept)")
    ap.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    ap.add_argument("--baseline", metavar="REV", help="also measure commit REV, alternately")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/)")
    args = ap.parse_args(argv)
    started = machine()
    examples, steps, repeat = args.examples, args.steps, args.repeat
    if args.quick:
        examples, steps, repeat = 5, 10, 1
    title = (
        f"Hypothesis on {PROFILE}, default geometry: {examples} examples x {steps} "
        f"steps, median of {repeat}"
    )
    if args.baseline:
        with exported(args.baseline) as base:
            hyp = compare_hypothesis(base, examples, steps, repeat)
        show_baseline(args.baseline, hyp, f"{title}, µs per step")
        data = {"profile": PROFILE, "examples": examples, "steps": steps, "repeat": repeat}
        save("hypothesis_overhead", {**data, "baseline": args.baseline, **hyp}, args.out, started)
        return 0
    rows = measure(examples, steps, repeat)
    ratio, outside = show_rows(rows, title)
    save(
        "hypothesis_overhead",
        {
            "profile": PROFILE,
            "examples": examples,
            "steps": steps,
            "repeat": repeat,
            "runs": rows,
            "ratio_project_over_trivial": ratio,
            "share_of_project_step_outside_model": outside,
        },
        args.out,
        started,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
