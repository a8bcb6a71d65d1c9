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

Times are CPU seconds of the process (the machine is shared; CPU time is what a step costs);
``repetition`` measures wall time unless told otherwise, as ``benchmarks/baseline.py`` measures
both trees with it. Each machine first runs one tiny example untimed (Hypothesis's first run in
a process scans the loaded modules for constants).
``--baseline REV`` runs this script's repetitions on commit ``REV``'s tree (exported to a
temporary directory, ``benchmarks/baseline.py``; ``$PCPFUZZ_BENCH_TREE`` puts that tree's
packages first) and on this one, alternately, and prints both sides.

    python benchmarks/hypothesis_overhead.py                      # about a minute
    python benchmarks/hypothesis_overhead.py --baseline 1e60c94   # both trees, a few minutes
    python benchmarks/hypothesis_overhead.py --quick              # a few seconds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

TREE_ENV = "PCPFUZZ_BENCH_TREE"
HERE = Path(__file__).resolve()
TREE = Path(os.environ.get(TREE_ENV) or HERE.parent.parent)
"""The tree whose machine and model are measured (this one unless ``$PCPFUZZ_BENCH_TREE``)."""
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(TREE))

from _against import verified  # noqa: E402
from _common import machine, save, show  # noqa: E402
from baseline import exported  # noqa: E402
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
from stateful.machine import ARG_CHOICES, PcpMachine, machine_for  # noqa: E402

assert Path(machine_for.__code__.co_filename).is_relative_to(TREE), machine_for.__code__

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

    @rule(step=st.integers(0, len(CHOICES) * ARG_CHOICES - 1))
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


Clock = Callable[[], float]


def timed_run(
    cls: type[RuleBasedStateMachine], rep: int, examples: int, steps: int, clock: Clock
) -> float:
    """CPU seconds of one generation-only run of ``cls`` with seed ``rep``."""
    chosen = settings(
        max_examples=examples,
        stateful_step_count=steps,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    seed(rep)(cls)
    began = clock()
    run_state_machine_as_test(cls, settings=chosen)
    return clock() - began


def repetition(
    rep: int, examples: int, steps: int, clock: Clock = time.perf_counter
) -> dict[str, dict[str, float]]:
    """One repetition: seconds and steps of each of the three runs."""
    traces = Traces()
    ours = machine_for(get_profile(PROFILE), DEFAULT_GEOMETRY, traces)
    for cls in (ours, Trivial, TrivialOneInt):  # Hypothesis's first run scans the modules
        timed_run(cls, rep, 1, 2, clock)
    traces.traces.clear()
    ours_s = timed_run(ours, rep, examples, steps, clock)
    ours_steps = sum(map(len, traces.traces))
    Trivial.steps = TrivialOneInt.steps = 0
    trivial_s = timed_run(Trivial, rep, examples, steps, clock)
    one_int_s = timed_run(TrivialOneInt, rep, examples, steps, clock)
    began = clock()
    for actions in traces.traces:
        execute(get_profile(PROFILE), DEFAULT_GEOMETRY, actions)
    model_s = clock() - began
    return {
        "project machine": {"seconds": ours_s, "steps": ours_steps},
        "trivial machine": {"seconds": trivial_s, "steps": Trivial.steps},
        ONE_INT: {"seconds": one_int_s, "steps": TrivialOneInt.steps},
        "model alone (replay)": {"seconds": model_s, "steps": ours_steps},
    }


def measure(examples: int, steps: int, repeat: int) -> dict[str, dict[str, float]]:
    """Median steps, steps/s and µs/step of each run over ``repeat`` repetitions."""
    reps = [repetition(rep, examples, steps, time.process_time) for rep in range(repeat)]
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


def one_side(tree: Path, rep: int, examples: int, steps: int) -> dict[str, float]:
    """µs per step of each run of repetition ``rep`` on ``tree`` (a subprocess)."""
    done = subprocess.run(
        [sys.executable, str(HERE), "--one-rep", str(rep), "--examples", str(examples)]
        + ["--steps", str(steps)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tree,
        env={**os.environ, TREE_ENV: str(tree)},
    )
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"hypothesis_overhead: repetition {rep} failed on {tree}: {last}")
    return json.loads(done.stdout)


def us_per_step(rep: int, examples: int, steps: int) -> dict[str, float]:
    """µs per step of each run of one repetition here."""
    return {
        n: 1e6 * r["seconds"] / max(r["steps"], 1)
        for n, r in repetition(rep, examples, steps, time.process_time).items()
    }


def against(base: Path, examples: int, steps: int, repeat: int) -> dict[str, dict]:
    """Each side's median µs per step of each run and median project/trivial ratio, over
    ``repeat`` repetitions run alternately on ``base`` and here."""
    per: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for rep in range(repeat):
        for side, tree in (("before", base), ("after", TREE)):
            per[side].append(one_side(tree, rep, examples, steps))
    out = {}
    for side, reps in per.items():
        us = {name: statistics.median(r[name] for r in reps) for name in reps[0]}
        ratio = statistics.median(r["project machine"] / r["trivial machine"] for r in reps)
        out[side] = {"us_per_step": us, "ratio": ratio}
    return out


def show_baseline(rev: str, hyp: dict[str, dict], title: str) -> None:
    """Print µs per step here and at ``rev`` (``against``) and each side's ratio."""
    before, after = hyp["before"]["us_per_step"], hyp["after"]["us_per_step"]
    show(
        f"Before ({rev}) / after: {title}",
        ("run", "before", "after", "after/before"),
        [
            (name, f"{before[name]:.0f}", f"{after[name]:.0f}", f"{after[name] / before[name]:.2f}")
            for name in after
        ]
        + [
            (
                "project / trivial machine (same side)",
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
    ap.add_argument("--one-rep", type=int, help=argparse.SUPPRESS)
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
    if args.one_rep is not None:
        print(json.dumps(us_per_step(args.one_rep, examples, steps)))
        return 0
    if args.baseline:
        with exported(verified(args.baseline)) as base:
            hyp = against(base, examples, steps, repeat)
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
