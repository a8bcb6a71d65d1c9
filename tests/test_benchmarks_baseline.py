"""The search benchmarks' ``--baseline REV`` runs both trees and writes both sides (against
``HEAD``, with tiny budgets: this keeps the scripts working, it times nothing)."""

from __future__ import annotations

import json
import sys
from importlib import import_module
from pathlib import Path

import pytest

from pcpfuzz import BUILD

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = {
    "time_to_bug": ("--engine", "random", "--seconds", "2"),
    "hypothesis_overhead": (),
}


def bench_main(script: str, *args: str) -> int:
    """``benchmarks/<script>.py``'s ``main`` with ``args`` (in this process; its ``--baseline``
    runs each tree's side in subprocesses)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return import_module(script).main(list(args))


@pytest.mark.skipif(
    BUILD.compiled,
    reason="--baseline exports a commit that is never compiled (the pure run tests it)",
)
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_baseline_runs_both_sides(script: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    assert (
        bench_main(script, "--quick", "--baseline", "HEAD", *SCRIPTS[script], "--out", str(out))
        == 0
    )
    data = json.loads(out.read_text())
    assert data["baseline"] == "HEAD"
    if script == "time_to_bug":
        (row,) = data["rows"]
        assert (row["profile"], row["engine"]) == ("v5.9-nofix", "random")
        assert row["before"]["seeds"] == row["after"]["seeds"] == 2
    else:
        for side in ("before", "after"):
            assert data[side]["ratio"] > 0
            assert set(data[side]["us_per_step"]) >= {"project machine", "trivial machine"}


def test_a_bad_baseline_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as exc:
        bench_main("time_to_bug", "--quick", "--baseline", "nosuchrev", "--out", str(out))
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"--baseline nosuchrev: not a commit of {BENCHMARKS.parent}"
    ]
    assert not out.exists()
