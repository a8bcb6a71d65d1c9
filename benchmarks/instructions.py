"""Instructions per action (valgrind's callgrind): robust under load, unlike seconds.

Each (profile, engine, check mode) runs a native campaign of ``--examples`` episodes and of
one episode under ``valgrind --tool=callgrind``; the difference of their instruction counts
over the difference of their actions is the cost of an action, start-up excluded. With
``--baseline REV`` the same runs are made on commit REV's tree, beside.

    python benchmarks/instructions.py --baseline 40fd18b
    python benchmarks/instructions.py --examples 3 --profile v5.11 --engine random
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ("v5.11", "v6.1", "v6.12")
ENGINES = ("random", "pct")
MODES = ("incremental", "none")
"""``incremental``: every check after every action, as in a campaign; ``none``: no check."""


def inner(profile: str, engine: str, mode: str, examples: int) -> None:
    """Run one campaign (in the tree first on ``PYTHONPATH``) and print its action count."""
    import pcpfuzz.engines.native as native
    from pcpfuzz.engines.base import budget_for
    from pcpfuzz.engines.registry import load_engines
    from pcpfuzz.ladder import geometry_for
    from pcpfuzz.profiles import get_profile

    if mode == "none":
        native.check = lambda s, full=False: []
    fn = load_engines()[engine]
    c = fn(get_profile(profile), geometry_for(profile), 0, budget_for(engine, examples, 1e9))
    print(json.dumps({"actions": c.model_steps}))


def counted(tree: Path, profile: str, engine: str, mode: str, examples: int) -> tuple[int, int]:
    """(instructions, actions) of one campaign of ``tree`` under callgrind."""
    with tempfile.TemporaryDirectory(prefix="pcpfuzz-cg-") as tmp:
        out = Path(tmp) / "cg.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
            + [__file__, "--inner", profile, engine, mode, str(examples)],
            capture_output=True,
            text=True,
            check=True,
            cwd=tree,
            env={**os.environ, "PYTHONPATH": str(tree)},
        )
        found = re.search(r"^summary: (\d+)", out.read_text(), re.M)
        assert found, done.stderr[-500:]
        return int(found.group(1)), json.loads(done.stdout.splitlines()[-1])["actions"]


def per_action(tree: Path, profile: str, engine: str, mode: str, examples: int) -> float:
    """Instructions per action of ``examples`` episodes beyond the first."""
    i1, a1 = counted(tree, profile, engine, mode, 1)
    i2, a2 = counted(tree, profile, engine, mode, examples)
    if a2 == a1:
        raise SystemExit(f"{profile} {engine}: no action beyond the first episode")
    return (i2 - i1) / (a2 - a1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=6)
    parser.add_argument("--profile", action="append", choices=PROFILES)
    parser.add_argument("--engine", action="append", choices=ENGINES)
    parser.add_argument("--mode", action="append", choices=MODES)
    parser.add_argument("--baseline", metavar="REV")
    parser.add_argument("--inner", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        profile, engine, mode, examples = args.inner
        inner(profile, engine, mode, int(examples))
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _against import verified
    from baseline import exported

    rows = [
        (p, e, m)
        for p in args.profile or PROFILES
        for e in args.engine or ENGINES
        for m in args.mode or MODES
    ]
    head = f"{'profile':8} {'engine':7} {'checks':12} {'instr/action':>13}"
    if args.baseline is None:
        print(head)
        for p, e, m in rows:
            print(f"{p:8} {e:7} {m:12} {per_action(ROOT, p, e, m, args.examples):13.0f}")
        return
    with exported(verified(args.baseline)) as base:
        print(f"{head} {args.baseline + ' (before)':>16} {'ratio':>6}")
        for p, e, m in rows:
            after = per_action(ROOT, p, e, m, args.examples)
            before = per_action(base, p, e, m, args.examples)
            print(f"{p:8} {e:7} {m:12} {after:13.0f} {before:16.0f} {before / after:6.3f}")


if __name__ == "__main__":
    main()
