"""Before/after in one run: the same measurements in this tree and in another commit's,
exported with ``git archive`` into a temporary directory and run alternately (so load changes
hit both sides alike). Used by ``throughput.py --baseline REV``.

Three kinds of measurement, each one subprocess with that tree's packages first on the path:

- ``campaign``: a native engine's campaign of a number of examples on the default geometry
  (CPU seconds per action; a failure found is shrunk, inside the time);
- ``episodes``: a native engine's first episodes of seed 0 on a profile's campaign geometry,
  every invariant checked after every action, without a campaign's stop and shrink at a
  failure (so v6.1, whose findings end episodes within a few actions, is measured too); the
  same seed on both sides runs the same actions unless the chooser's draws changed;
- ``hypothesis``: one repetition of that tree's ``benchmarks/hypothesis_overhead.py`` (µs per
  step of the project's state machine, the trivial one and the model alone).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURE = r"""
import json, sys, time
from importlib import import_module
import pcpfuzz
for m in ("random_walk", "pct"):
    import_module(f"pcpfuzz.engines.{m}")
from pcpfuzz.engines.base import ENGINES, budget_for
from pcpfuzz.geometry import DEFAULT_GEOMETRY
from pcpfuzz.profiles import get_profile


def campaign(engine, profile, examples):
    began = time.process_time()
    budget = budget_for(engine, examples, 1e9)
    c = ENGINES[engine](get_profile(profile), DEFAULT_GEOMETRY, 0, budget)
    cpu = time.process_time() - began
    found = None if c.failure is None else c.failure.violation.invariant
    return {"actions": c.model_steps, "cpu": cpu, "found": found}


def episodes(engine, profile, examples):
    from pcpfuzz.engines.native import episode_rng, run_episode
    from pcpfuzz.engines.pct import pct_policy
    from pcpfuzz.engines.random_walk import _policy
    from pcpfuzz.ladder import geometry_for
    from pcpfuzz.ops import campaign_keeps_populated
    from pcpfuzz.system import System
    p, geo = get_profile(profile), geometry_for(profile)
    make = {"random": _policy, "pct": pct_policy()}[engine]
    budget = budget_for(engine, examples, 1e9)
    actions, failed, trace = 0, 0, []
    began = time.process_time()
    for i in range(examples):
        s = System(p, geo, keep_populated=campaign_keeps_populated(p))
        done, failure = run_episode(s, make(s, episode_rng(engine, 0, i), budget), budget.steps)
        actions += len(done)
        failed += failure is not None
        trace.append(repr(done))
    cpu = time.process_time() - began
    digest = __import__("hashlib").sha256("\n".join(trace).encode()).hexdigest()[:16]
    return {"actions": actions, "cpu": cpu, "failed": failed, "digest": digest}


def hypothesis(examples, steps, rep):
    sys.path.insert(0, "benchmarks")
    from hypothesis_overhead import repetition
    runs = repetition(rep, examples, steps)
    return {name: 1e6 * r["seconds"] / max(r["steps"], 1) for name, r in runs.items()}


kind, *args = json.loads(sys.argv[1])
result = globals()[kind](*args)
print(json.dumps({"tree": pcpfuzz.__file__, **result}))
"""


@contextmanager
def exported(rev: str) -> Iterator[Path]:
    """Commit ``rev`` of this repository as a directory tree (removed afterwards)."""
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="pcpfuzz-baseline-") as tmp:
        with tarfile.open(fileobj=BytesIO(tar)) as tf:
            tf.extractall(tmp, filter="data")
        yield Path(tmp)


def measure(tree: Path, spec: list) -> dict:
    """One measurement ``spec`` (a kind and its arguments) with ``tree``'s packages first on
    the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tree,
        env=env,
    )
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"baseline: {spec[0]} {spec[1:]} failed in {tree}: {last}")
    result = json.loads(done.stdout)
    assert Path(result["tree"]).is_relative_to(tree), result["tree"]
    return result


def alternate(base: Path, specs: list[list], repeat: int) -> list[dict[str, list[dict]]]:
    """Each spec measured ``repeat`` times on each side, before and after alternately."""
    out = []
    for spec in specs:
        per: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(repeat):
            for side, tree in (("before", base), ("after", ROOT)):
                per[side].append(measure(tree, spec))
        out.append(per)
    return out


def _median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def _us_per_action(results: list[dict]) -> float:
    return statistics.median(1e6 * r["cpu"] / max(r["actions"], 1) for r in results)


def compare(
    rev: str, cases: list[tuple[str, str]], examples: int, repeat: int, base: Path | None = None
) -> list[dict]:
    """µs per action (median of ``repeat``) of each (engine, profile) campaign here and at
    ``rev`` (or in its exported tree ``base``)."""
    if base is None:
        with exported(rev) as tree:
            return compare(rev, cases, examples, repeat, tree)
    rows = []
    specs = [["campaign", engine, profile, examples] for engine, profile in cases]
    for (engine, profile), per in zip(cases, alternate(base, specs, repeat), strict=True):
        before, after = _us_per_action(per["before"]), _us_per_action(per["after"])
        rows.append(
            {
                "engine": engine,
                "profile": profile,
                "examples": examples,
                "us_per_action_before": before,
                "us_per_action_after": after,
                "ratio": after / before,
                "found_before": per["before"][-1]["found"],
                "found_after": per["after"][-1]["found"],
            }
        )
    return rows


def compare_episodes(
    base: Path, cases: list[tuple[str, str]], examples: int, repeat: int
) -> list[dict]:
    """Actions per CPU second (median of ``repeat``) of each (engine, profile)'s first
    ``examples`` episodes here and in ``base``; whether both sides ran the same actions."""
    rows = []
    specs = [["episodes", engine, profile, examples] for engine, profile in cases]
    for (engine, profile), per in zip(cases, alternate(base, specs, repeat), strict=True):
        before, after = (1e6 / _us_per_action(per[k]) for k in ("before", "after"))
        rows.append(
            {
                "engine": engine,
                "profile": profile,
                "examples": examples,
                "actions": per["after"][0]["actions"],
                "actions_per_second_before": before,
                "actions_per_second_after": after,
                "speedup": after / before,
                "failed_episodes": per["after"][0]["failed"],
                "same_actions": per["before"][0]["digest"] == per["after"][0]["digest"],
            }
        )
    return rows


def compare_hypothesis(base: Path, examples: int, steps: int, repeat: int) -> dict[str, dict]:
    """µs per step (median of ``repeat`` repetitions, seeds 0, 1, ...) of the project's state
    machine, the trivial one and the model alone, here and in ``base``, and each side's ratio
    of the project machine's step to the trivial one's."""
    per: dict[str, list[dict]] = {"before": [], "after": []}
    for rep in range(repeat):
        for side, tree in (("before", base), ("after", ROOT)):
            per[side].append(measure(tree, ["hypothesis", examples, steps, rep]))
    out = {}
    for side, results in per.items():
        us = {name: _median(results, name) for name in results[0] if name != "tree"}
        ratios = [r["project machine"] / r["trivial machine"] for r in results]
        out[side] = {"us_per_step": us, "ratio": statistics.median(ratios)}
    return out
