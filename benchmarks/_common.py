"""What every benchmark script shares: the machine it ran on, the engines, tables and JSON."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from importlib import import_module
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pcpfuzz.engines.base import ENGINES, EngineFn
from pcpfuzz.engines.registry import ENGINE_MODULES

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict[str, object]:
    """Where and when a benchmark ran: CPU model and count, load, Python, the commit."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "commit": commit or None,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def engines(names: Iterable[str] | None = None) -> dict[str, EngineFn]:
    """The registered engines (each engine module that exists is imported), or ``names``."""
    for module in ENGINE_MODULES:
        try:
            import_module(f"pcpfuzz.engines.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"pcpfuzz.engines.{module}":
                raise
    if names is None:
        return dict(ENGINES)
    missing = [n for n in names if n not in ENGINES]
    if missing:
        sys.exit(f"unknown engine(s) {', '.join(missing)} (known: {', '.join(ENGINES)})")
    return {n: ENGINES[n] for n in names}


def median(xs: Sequence[float]) -> float:
    """The median, with an empty sequence as NaN."""
    return statistics.median(xs) if xs else float("nan")


def detection(runs: Sequence[dict]) -> dict[str, object]:
    """What every time-to-bug table reports of a set of seeded runs: seeds, detections, the
    invariants found, and the median and worst time to the first failure (inf: not found)."""
    found = [r for r in runs if r["found"]]
    ttf = sorted(r["found_after"] if r["found"] else math.inf for r in runs)
    return {
        "seeds": len(runs),
        "detected": len(found),
        "invariants": dict(Counter(r["invariant"] for r in found)),
        "median_time_to_failure": median(ttf),
        "worst_time_to_failure": ttf[-1],
    }


def seconds(x: float) -> str:
    """A duration for a table: ms below one second."""
    if x != x:
        return "-"
    if x == float("inf"):
        return "miss"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def show(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print a table."""
    table = Table(*columns, title=title)
    for row in rows:
        table.add_row(*map(str, row))
    Console(width=160).print(table)


def save(name: str, data: dict[str, object], out: Path | None, started: dict[str, object]) -> Path:
    """Write ``data`` with ``started`` (``machine()`` when the run began, and the load at its
    end) as JSON to ``out`` or ``benchmarks/results/<name>.json``."""
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {**started, "load_average_at_end": machine()["load_average"]}
    path.write_text(json.dumps({"machine": info, **data}, indent=2, default=str) + "\n")
    print(f"wrote {path}")
    return path
