"""``benchmarks/instructions.py`` runs under callgrind and prints a positive instruction count
per action (a smoke test: no count is asserted, benchmarks are not timed tests)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "instructions.py"


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_instructions_prints_a_count_per_action() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--examples", "2", "--profile", "v5.11"]
        + ["--engine", "random", "--mode", "none"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split() == ["profile", "engine", "checks", "instr/action"]
    profile, engine, mode, count = row.split()
    assert (profile, engine, mode) == ("v5.11", "random", "none")
    assert float(count) > 0
