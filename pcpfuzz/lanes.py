"""A trace as per-CPU swim lanes, and the state that matters at its last step, for the
terminal (rich) and for SVG."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pcpfuzz.actions import Action
from pcpfuzz.constants import MT
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System
from pcpfuzz.trace import Outcome, execute

PB_LETTER = {MT.UNMOVABLE: "U", MT.MOVABLE: "M", MT.RECLAIMABLE: "R", MT.CMA: "C", MT.ISOLATE: "I"}


def collapse(lines: Sequence[str]) -> list[str]:
    """Consecutive repeats of a line as one line with a count, e.g. a retry loop's test."""
    out: list[str] = []
    counts: list[int] = []
    for line in lines:
        if out and out[-1] == line:
            counts[-1] += 1
        else:
            out.append(line)
            counts.append(1)
    return [line if n == 1 else f"{line} (x{n})" for line, n in zip(out, counts, strict=True)]


def swimlanes(system: System, actions: Sequence[Action], outcome: Outcome) -> Table:
    """One row per action, one column per CPU, holding what each CPU logged in that action."""
    table = Table(title="per-CPU swim lanes", show_lines=True, expand=True)
    table.add_column("#", justify="right", style="dim")
    table.add_column("action", style="bold")
    for cpu in range(system.geo.nr_cpus):
        table.add_column(f"CPU{cpu}")
    lanes: dict[tuple[int, int], list[str]] = {}
    for index, cpu, text in system.log:
        lanes.setdefault((index - 1, cpu if cpu is not None else 0), []).append(text)
    for i, action in enumerate(actions[: outcome.applied]):
        cells = ["\n".join(collapse(lanes.get((i, cpu), []))) for cpu in range(system.geo.nr_cpus)]
        table.add_row(str(i), str(action), *cells)
    if outcome.violation is not None:
        where = "at rest" if outcome.at == -1 else f"after action {outcome.at}"
        table.add_row("", Text(where, style="red"), Text(str(outcome.violation), style="bold red"))
    return table


def state_panel(system: System) -> Panel:
    """The pcplists, pageblock types and counters of ``system``."""
    z = system.zone
    lines = []
    for cpu, pcp in enumerate(system.pcp):
        lists = " ".join(f"{MT(i).name}={lst}" for i, lst in enumerate(pcp.lists))
        online = "" if system.cpus[cpu].online else " (offline)"
        lines.append(
            f"pcp{cpu}{online}: count {pcp.count} high {pcp.high} batch {pcp.batch}  {lists}"
        )
    pbs = "".join(PB_LETTER[MT(mt)] for mt in system.pageblock_mt)
    per_block = system.geo.block_pages // system.geo.pageblock_nr_pages
    blocks = " ".join(pbs[i : i + per_block] for i in range(0, len(pbs), per_block))
    lines.append(f"pageblocks (U/M/R/C/I, by memory block): {blocks}")
    lines.append(
        f"NR_FREE_PAGES {z.nr_free_pages}  NR_FREE_CMA_PAGES {z.nr_free_cma_pages}  "
        f"nr_isolate_pageblock {z.nr_isolate_pageblock}  managed {z.managed_pages}  "
        f"present {z.present_pages}  fraction {system.fraction}"
    )
    lines.append(f"pool (allocated, freeable): {system.pool()}")
    return Panel("\n".join(lines), title="state at the end of the trace")


def show(profile: Profile, geometry: Geometry, actions: Sequence[Action]) -> Group:
    """Replay ``actions`` with tracing on and render the lanes and the final state."""
    system = System(profile, geometry, tracing=True)
    outcome = execute(profile, geometry, actions, system=system)
    return Group(swimlanes(system, actions, outcome), state_panel(system))
