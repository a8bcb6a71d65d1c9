"""A rendered trace as per-CPU swim lanes, and the state that matters where it stops, for the
terminal (rich) and for SVG."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT
from pcpfuzz.render import END, Rendering, TraceLine, fold
from pcpfuzz.system import System

PB_LETTER = {MT.UNMOVABLE: "U", MT.MOVABLE: "M", MT.RECLAIMABLE: "R", MT.CMA: "C", MT.ISOLATE: "I"}


def _cell(lines: Sequence[TraceLine]) -> str:
    out = []
    for f in fold(lines):
        texts = [line.text for line in f.lines]
        if f.repeat > 1:
            texts[-1] += (
                f"  [x{f.repeat}]" if len(texts) == 1 else f"  [these {len(texts)}, x{f.repeat}]"
            )
        out.extend(texts)
    return "\n".join(out)


def swimlanes(r: Rendering) -> Table:
    """One row per action (and one for coming to rest), one column per CPU."""
    ncpus = r.system.geo.nr_cpus
    table = Table(title="per-CPU swim lanes", show_lines=True, expand=True)
    table.add_column("#", justify="right", style="dim")
    table.add_column("action", style="bold", overflow="fold")
    for cpu in range(ncpus):
        table.add_column(f"CPU{cpu}", overflow="fold")
    cells: dict[tuple[int, int], list[TraceLine]] = {}
    verdicts: dict[int, str] = {}
    for line in r.lines:
        if line.cpu is None:
            verdicts[line.index] = line.text
        else:
            cells.setdefault((line.index, line.cpu), []).append(line)
    rows = [(i, str(a)) for i, a in enumerate(r.actions[: r.outcome.applied])]
    if any(idx == END for idx, _ in cells) or END in verdicts:
        rows.append((END, "at rest"))
    for index, label in rows:
        table.add_row(
            "" if index == END else str(index),
            label,
            *(_cell(cells.get((index, cpu), ())) for cpu in range(ncpus)),
        )
        if index in verdicts:
            table.add_row("", "", Text(verdicts[index], style="bold red"))
    return table


def state_panel(s: System) -> Panel:
    """The pcplists, pageblock types and counters of ``s``."""
    z = s.zone
    lines = []
    for cpu, pcp in enumerate(s.pcp):
        # One list per type (v5.x): all of them; multi-order pcplists (v6.x): the non-empty.
        lists = " ".join(
            f"{pcp.list_name(i)}={lst}"
            for i, lst in enumerate(pcp.lists)
            if lst or len(pcp.lists) == MIGRATE_PCPTYPES
        )
        online = "" if s.cpus[cpu].online else " (offline)"
        lines.append(
            f"pcp{cpu}{online}: count {pcp.count} high {pcp.high} batch {pcp.batch}  {lists}"
        )
    pbs = "".join(PB_LETTER[MT(mt)] for mt in s.pageblock_mt)
    per_block = s.geo.block_pages // s.geo.pageblock_nr_pages
    blocks = " ".join(pbs[i : i + per_block] for i in range(0, len(pbs), per_block))
    lines.append(f"pageblock types by memory block (U/M/R/C/I): {blocks}")
    lines.append(
        f"NR_FREE_PAGES {z.nr_free_pages}  NR_FREE_CMA_PAGES {z.nr_free_cma_pages}  "
        f"nr_isolate_pageblock {z.nr_isolate_pageblock}  managed {z.managed_pages}  "
        f"present {z.present_pages}  percpu_pagelist_fraction {s.fraction}"
    )
    lines.append(f"allocated blocks no task holds: {s.pool()}")
    return Panel("\n".join(lines), title="state where the trace stops")


def lanes_view(r: Rendering) -> Group:
    """The swim lanes, then the state."""
    return Group(swimlanes(r), state_panel(r.system))
