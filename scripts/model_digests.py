"""Digest of every profile's native episodes: the state fingerprint and the violations found
after every action, for ``--examples`` episodes per profile and engine (seed 0). Two trees
whose models behave alike print the same lines (``diff`` them). A task's program point is
taken relative to its functions' first lines, so moving a function does not change it."""

from __future__ import annotations

import argparse
import hashlib
from types import GeneratorType

import pcpfuzz.engines.native as native
import pcpfuzz.fingerprint
from pcpfuzz.engines.base import Budget
from pcpfuzz.engines.registry import load_engines
from pcpfuzz.fingerprint import fingerprint
from pcpfuzz.ladder import geometry_for
from pcpfuzz.profiles import PROFILES
from pcpfuzz.state import Task


def relative_point(task: Task) -> tuple[tuple[str, int], ...]:
    """``fingerprint._program_point`` with each line counted from its function's first."""
    out = []
    gen = task.gen
    while isinstance(gen, GeneratorType) and gen.gi_frame is not None:
        out.append((gen.gi_code.co_name, gen.gi_frame.f_lineno - gen.gi_code.co_firstlineno))
        gen = gen.gi_yieldfrom
    return tuple(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=20)
    args = parser.parse_args()
    engines = load_engines()
    check = native.check
    digest = hashlib.sha256()

    def recording(s):  # type: ignore[no-untyped-def]
        found = check(s)
        digest.update(f"{fingerprint(s)}|{found!r}\n".encode())
        return found

    native.check = recording
    pcpfuzz.fingerprint._program_point = relative_point
    for name, profile in PROFILES.items():
        for engine in ("random", "pct"):
            digest = hashlib.sha256()
            budget = Budget(max_examples=args.examples, seconds=1e9, steps=60)
            campaign = engines[engine](profile, geometry_for(name), 0, budget)
            print(name, engine, campaign.examples, digest.hexdigest()[:16], flush=True)


if __name__ == "__main__":
    main()
