"""Each benchmark script runs with ``--quick`` and writes its JSON (benchmarks are not timed
tests: this only keeps the scripts working)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pcpfuzz import BUILD

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = {
    "throughput.py": ("--baseline", "HEAD"),  # before/after against a git-archived tree
    "time_to_bug.py": ("--engine", "random", "--engine", "pct", "--seconds", "2"),
    "scaling.py": (),
    "chooser.py": ("--baseline", "HEAD"),
}
BASELINED = {"throughput.py", "chooser.py"}
"""The scripts run with ``--baseline``, which exports a commit that is never compiled (the
pure run tests them)."""


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_benchmark_script_runs_quick(script: str, tmp_path: Path) -> None:
    if script in BASELINED and BUILD.compiled:
        pytest.skip("--baseline exports a commit that is never compiled (the pure run tests it)")
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *SCRIPTS[script], "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["machine"]["nproc"] >= 1
    if script == "time_to_bug.py":
        assert {s["engine"] for s in data["summary"]} == {"random", "pct"}
        assert all(s["seeds"] == 2 for s in data["summary"])  # detection depends on speed
    if script == "throughput.py":
        assert data["hypothesis"]["ratio"] > 0
        assert all(r["actions_per_second"] > 0 for r in data["native"])
        rows = data["baseline"]["campaigns"]
        assert {(r["engine"], r["profile"]) for r in rows} == {
            (e, p) for e in ("random", "pct") for p in ("v5.10", "v5.11")
        }
        assert all(r["us_per_action_before"] > 0 and r["us_per_action_after"] > 0 for r in rows)
        episodes = data["baseline"]["episodes"]
        assert {(r["engine"], r["profile"]) for r in episodes} == {
            (e, p) for e in ("random", "pct") for p in ("v5.11", "v6.1", "v6.12")
        }
        assert all(r["same_actions"] for r in episodes)  # HEAD against HEAD: the same draws
        hyp = data["baseline"]["hypothesis"]
        assert hyp["before"]["ratio"] > 0 and hyp["after"]["ratio"] > 0
    if script == "scaling.py":
        assert {r["processes"] for r in data["engines"]} == {1, 2}
        assert [r["workers"] for r in data["campaigns"]] == [None, 1, 2]
    if script == "chooser.py":
        rows = data["rows"]
        assert {(r["engine"], r["profile"]) for r in rows} == {
            (e, p) for e in ("random", "pct") for p in ("v5.11", "v6.1", "v6.12")
        }
        assert all(r["actions"] > 0 for r in rows)
        assert all(r["chooser_us_before"] > 0 and r["chooser_us_after"] > 0 for r in rows)
        assert all(r["same_actions"] for r in rows)  # HEAD against HEAD: the same draws
