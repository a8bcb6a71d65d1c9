"""Before/after in one run: the same native-engine measurement in this tree and in another
commit's, exported with ``git archive`` into a temporary directory and run alternately (so load
changes hit both sides alike). Used by ``throughput.py --baseline REV``."""

from __future__ import annotations

import json
import os
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
engine, profile, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
began = time.process_time()
c = ENGINES[engine](get_profile(profile), DEFAULT_GEOMETRY, 0, budget_for(engine, n, 1e9))
cpu = time.process_time() - began
print(json.dumps({"tree": pcpfuzz.__file__, "actions": c.model_steps, "cpu": cpu,
                  "found": None if c.failure is None else c.failure.violation.invariant}))
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


def measure(tree: Path, engine: str, profile: str, examples: int) -> dict:
    """One measurement with ``tree``'s ``pcpfuzz`` first on the path: CPU seconds, actions."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, engine, profile, str(examples)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tree,
        env=env,
    ).stdout
    result = json.loads(out)
    assert Path(result["tree"]).is_relative_to(tree), result["tree"]
    return result


def compare(rev: str, cases: list[tuple[str, str]], examples: int, repeat: int) -> list[dict]:
    """µs per action (median of ``repeat``) of each (engine, profile) here and at ``rev``."""
    rows = []
    with exported(rev) as base:
        for engine, profile in cases:
            per = {"before": [], "after": []}
            last = {}
            for _ in range(repeat):
                for side, tree in (("before", base), ("after", ROOT)):
                    r = measure(tree, engine, profile, examples)
                    per[side].append(1e6 * r["cpu"] / max(r["actions"], 1))
                    last[side] = r
            before, after = (sorted(per[k])[len(per[k]) // 2] for k in ("before", "after"))
            rows.append(
                {
                    "engine": engine,
                    "profile": profile,
                    "examples": examples,
                    "us_per_action_before": before,
                    "us_per_action_after": after,
                    "ratio": after / before,
                    "found_before": last["before"]["found"],
                    "found_after": last["after"]["found"],
                }
            )
    return rows
