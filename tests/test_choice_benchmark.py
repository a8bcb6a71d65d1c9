"""``benchmarks/chooser.py`` runs with ``--quick`` and writes its JSON (a benchmark is not a
timed test: this only keeps the script working)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pcpfuzz import BUILD

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "chooser.py"


@pytest.mark.parametrize("baseline", [False, True])
def test_chooser_benchmark_runs_quick(baseline: bool, tmp_path: Path) -> None:
    if baseline and BUILD.compiled:
        pytest.skip("--baseline exports a commit that is never compiled (the pure run tests it)")
    out = tmp_path / "result.json"
    extra = ["--baseline", "HEAD"] if baseline else []
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", *extra, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["machine"]["nproc"] >= 1
    rows = data["rows"]
    assert {(r["engine"], r["profile"]) for r in rows} == {
        (e, p) for e in ("random", "pct") for p in ("v5.11", "v6.1", "v6.12")
    }
    assert all(r["actions"] > 0 for r in rows)
    if baseline:
        assert all(r["chooser_us_before"] > 0 and r["chooser_us_after"] > 0 for r in rows)
        assert all(r["same_actions"] for r in rows)  # HEAD against HEAD: the same draws
    else:
        assert all(r["chooser_us_per_action"] > 0 and r["actions_per_second"] > 0 for r in rows)
