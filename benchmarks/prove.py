"""``pcpfuzz prove`` against its targets and against Spin, in one run.

For each configuration of issue 14 (Spin's operations on 2 CPUs x 1 and x 2 blocks at K=2, and
each zoo bug): the verdict, states, transitions, seconds to the proof or violation and states/s.
When ``spin`` and ``gcc`` are installed, the Promela model ``benchmarks/promela/pcp_offline.pml``
(v5.9-nofix, and v5.11 with ``-DPCP_DISABLE``) is compiled and searched in the same run: its time
to verdict, and its states/s on a larger instance (``-DALLOCS``) long enough to time, with the
ratio to pcpfuzz's states/s on the same profile. ``--quick`` runs the small configurations only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, machine, median, save, seconds, show  # noqa: E402

from pcpfuzz.cli.prove import prove_geometry  # noqa: E402
from pcpfuzz.profiles import get_profile  # noqa: E402
from pcpfuzz.prove.explore import Bounds, prove  # noqa: E402
from pcpfuzz.prove.scope import SPIN_OPS, parse_scope  # noqa: E402

PROMELA = ROOT / "benchmarks" / "promela" / "pcp_offline.pml"
SPIN_ALLOCS = 4
"""Allocations in the larger Promela instance that times Spin's states/s (0.3 s here)."""
# (name, profile, cpus, blocks, online, fraction, scale, ops, quick)
CONFIGS = (
    ("v5.9-nofix 2x1", "v5.9-nofix", 2, 1, None, 8, None, SPIN_OPS, True),
    ("v5.10+p7 2x1", "v5.10+p7", 2, 1, None, 8, None, SPIN_OPS, False),
    ("v5.11 2x1", "v5.11", 2, 1, None, 8, None, SPIN_OPS, False),
    ("v5.11 2x2", "v5.11", 2, 2, None, 8, None, SPIN_OPS, False),
    (
        "v5.8-nobulkclamp 2x2",
        "v5.8-nobulkclamp",
        2,
        2,
        1,
        0,
        1536,
        "alloc_pages(0,MOVABLE)*1,free_pages,online_pages*1",
        True,
    ),
    (
        "v5.8-online-nopcpupdate 2x2",
        "v5.8-online-nopcpupdate",
        2,
        2,
        1,
        8,
        None,
        "offline_pages*1,online_pages*1",
        True,
    ),
    (
        "v5.11-unforced-disable 3x2",
        "v5.11-unforced-disable",
        3,
        2,
        None,
        0,
        2048,
        SPIN_OPS,
        False,
    ),
    (
        "v5.11-noenable-onfail 2x1",
        "v5.11-noenable-onfail",
        2,
        1,
        None,
        8,
        None,
        "alloc_pages(0,MOVABLE)*1,offline_pages*1,signal",
        True,
    ),
)


def run_prove(config: tuple, preemptions: int) -> dict[str, object]:
    name, profile, cpus, blocks, online, fraction, scale, ops, _quick = config
    geo = prove_geometry(cpus, blocks, online, fraction, scale)
    p = prove(get_profile(profile), geo, parse_scope(ops, cpus), Bounds(preemptions=preemptions))
    st = p.stats
    return {
        "config": name,
        "ops": ops,
        "verdict": p.verdict,
        "invariant": None if p.failure is None else p.failure.violation.invariant,
        "length": None if p.failure is None else len(p.failure.actions),
        "states": st.states,
        "transitions": st.transitions,
        "depth": st.depth,
        "seconds": st.seconds,
        "states_per_second": st.rate,
        "replayed_actions": st.replayed,
    }


def _pan(work: Path, defines: list[str]) -> tuple[float, str]:
    """Compile the model with ``defines``; the compile seconds and the built directory."""
    began = time.perf_counter()
    subprocess.run(
        ["spin", *defines, "-a", str(PROMELA)], cwd=work, check=True, capture_output=True
    )
    subprocess.run(["gcc", "-O2", "-w", "-DSAFETY", "-o", "pan", "pan.c"], cwd=work, check=True)
    return time.perf_counter() - began, str(work)


def run_spin(profile: str, defines: list[str], repeats: int) -> dict[str, object]:
    """Compile and search; the median search time over ``repeats`` (pan's own clock is too
    coarse for small spaces, so the wall time of ``./pan`` is taken)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        compile_s, _ = _pan(work, defines)
        times, out = [], ""
        for _ in range(repeats):
            began = time.perf_counter()
            out = subprocess.run(
                ["./pan", "-m1000000"], cwd=work, check=True, capture_output=True, text=True
            ).stdout
            times.append(time.perf_counter() - began)
    states = int(re.search(r"(\d+) states, stored", out).group(1))
    errors = int(re.search(r"errors: (\d+)", out).group(1))
    t = median(times)
    return {
        "config": f"Spin {profile} 2x1 {' '.join(defines) or ''}".strip(),
        "verdict": "violation" if errors else "proved",
        "states": states,
        "compile_seconds": compile_s,
        "seconds": t,
        "states_per_second": states / t,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="The small configurations only.")
    parser.add_argument("--preemptions", type=int, default=2)
    parser.add_argument("--spin-repeats", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = machine()
    rows = [run_prove(c, args.preemptions) for c in CONFIGS if c[-1] or not args.quick]
    show(
        f"pcpfuzz prove, K={args.preemptions}",
        ("config", "verdict", "states", "transitions", "depth", "time", "states/s"),
        (
            (
                r["config"],
                r["verdict"]
                + (f" {r['invariant']} ({r['length']} actions)" if r["invariant"] else ""),
                r["states"],
                r["transitions"],
                r["depth"],
                seconds(r["seconds"]),
                f"{r['states_per_second']:,.0f}",
            )
            for r in rows
        ),
    )
    spin: list[dict[str, object]] = []
    ratio = None
    if shutil.which("spin") and shutil.which("gcc"):
        spin = [
            run_spin("v5.9-nofix", [], args.spin_repeats),
            run_spin("v5.11", ["-DPCP_DISABLE"], args.spin_repeats),
            run_spin("v5.11", ["-DPCP_DISABLE", f"-DALLOCS={SPIN_ALLOCS}"], args.spin_repeats),
        ]
        show(
            "Spin on benchmarks/promela/pcp_offline.pml",
            ("config", "verdict", "states", "compile", "search", "states/s"),
            (
                (
                    r["config"],
                    r["verdict"],
                    r["states"],
                    seconds(r["compile_seconds"]),
                    seconds(r["seconds"]),
                    f"{r['states_per_second']:,.0f}",
                )
                for r in spin
            ),
        )
        ours = next((r for r in rows if r["config"] == "v5.11 2x1"), rows[0])
        ratio = spin[-1]["states_per_second"] / ours["states_per_second"]
        print(
            f"Spin's states/s ({spin[-1]['config']}) / pcpfuzz's ({ours['config']}): {ratio:,.0f}x"
        )
    else:
        print("spin or gcc not installed: no Spin comparison")
    save("prove", {"prove": rows, "spin": spin, "spin_ratio": ratio}, args.out, started)


if __name__ == "__main__":
    main()
