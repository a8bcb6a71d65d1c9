"""Running a benchmark script of this tree and of another commit's in one run (``--baseline``).

Each side runs its own copy of the script (``benchmarks/<name>.py`` of its tree, its packages
first on the path) as a subprocess writing JSON, one chunk (a profile, an engine) at a time,
before and after alternately, so that load changes hit both sides alike. The baseline tree is
``benchmarks/baseline.exported``'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def verified(rev: str) -> str:
    """``rev`` when it names a commit of this repository; else a one-line error naming it and
    exit status 2 (before anything is run or written)."""
    done = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if done.returncode:
        print(f"--baseline {rev}: not a commit of {ROOT}", file=sys.stderr)
        raise SystemExit(2)
    return rev


def run_script(tree: Path, script: str, args: list[str]) -> dict:
    """``tree``'s ``benchmarks/<script>`` with ``args`` and ``--out`` a temporary file; the JSON
    it wrote. Exits with a one-line message naming the tree when the script fails."""
    with tempfile.TemporaryDirectory(prefix="pcpfuzz-against-") as tmp:
        out = Path(tmp) / "out.json"
        done = subprocess.run(
            [sys.executable, str(tree / "benchmarks" / script), *args, "--out", str(out)],
            capture_output=True,
            text=True,
            check=False,
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
        )
        if done.returncode or not out.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(f"{script} {' '.join(args)} failed in {tree}: {last}")
        return json.loads(out.read_text())


def both_sides(base: Path, script: str, chunks: list[list[str]]) -> list[dict[str, dict]]:
    """Each chunk's arguments run by ``base``'s script, then by this tree's."""
    sides = (("before", base), ("after", ROOT))
    return [{side: run_script(tree, script, chunk) for side, tree in sides} for chunk in chunks]
