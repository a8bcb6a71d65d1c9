"""The search benchmarks' ``--baseline REV`` runs both trees and writes both sides (against
``HEAD``, with tiny budgets: this keeps the scripts working, it times nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = {
    "time_to_bug.py": ("--engine", "random", "--seconds", "2"),
    "hypothesis_overhead.py": (),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_baseline_runs_both_sides(script: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--baseline", "HEAD"]
        + [*SCRIPTS[script], "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["baseline"] == "HEAD"
    if script == "time_to_bug.py":
        (row,) = data["rows"]
        assert (row["profile"], row["engine"]) == ("v5.9-nofix", "random")
        assert row["before"]["seeds"] == row["after"]["seeds"] == 2
    else:
        for side in ("before", "after"):
            assert data[side]["ratio"] > 0
            assert set(data[side]["us_per_step"]) >= {"project machine", "trivial machine"}


def test_a_bad_baseline_is_one_line_naming_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "time_to_bug.py"), "--quick", "--baseline", "nosuchrev"]
        + ["--engine", "random", "--out", str(tmp_path / "r.json")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "nosuchrev" in done.stderr
    assert not (tmp_path / "r.json").exists()
