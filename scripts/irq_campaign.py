"""A campaign of every engine on a v6.x profile whose zone cannot empty (pageblocks 0 and 1
CMA: offline cannot isolate them), so that the known empty-zone PCP-HB finding does not end
every run first: what the interrupts (``Interrupt``) reach. Prints, per engine, the seeds that
found something, the examples run, the interrupts applied and the trylocks that failed inside
the interrupted CPU's own pcp section.

    python scripts/irq_campaign.py v6.12 --seeds 10 --time 15
"""

from __future__ import annotations

import argparse
from collections import Counter

import attrs

from pcpfuzz.engines.base import budget_for
from pcpfuzz.engines.registry import ENGINE_NAMES, load_engines
from pcpfuzz.ladder import geometry_for
from pcpfuzz.profiles import get_profile

OWN_SECTION = "trylock failed inside its CPU's own pcp section"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--time", type=float, default=15.0)
    args = parser.parse_args()
    profile = get_profile(args.profile)
    geometry = attrs.evolve(geometry_for(args.profile), cma_pageblocks=(0, 1))
    engines = load_engines()
    print("| engine | seeds | found | examples | actions | interrupts | own-section fallbacks |")
    print("|---|---|---|---|---|---|---|")
    for name in ENGINE_NAMES:
        found: Counter[str] = Counter()
        examples = actions = interrupts = own = 0
        for seed in range(args.seeds):
            c = engines[name](profile, geometry, seed, budget_for(name, 10**9, args.time))
            examples += c.examples
            actions += c.model_steps
            interrupts += sum(n for k, n in c.events.items() if k.startswith("interrupt: "))
            own += sum(n for k, n in c.events.items() if k.endswith(OWN_SECTION))
            if c.failure is not None:
                found[c.failure.violation.invariant] += 1
        verdict = ", ".join(f"{k} x{n}" for k, n in sorted(found.items())) or "0"
        print(
            f"| {name} | 0-{args.seeds - 1} | {verdict} | {examples} | {actions} | "
            f"{interrupts} | {own} |"
        )


if __name__ == "__main__":
    main()
