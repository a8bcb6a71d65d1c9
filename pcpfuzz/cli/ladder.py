"""``pcpfuzz ladder``: every rung of the series and every known-bug profile, fuzzed with one
budget each, as one table: what each adds, and what the engine found."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from pcpfuzz.corpus import save_failure
from pcpfuzz.engines.base import Campaign, budget_for
from pcpfuzz.engines.registry import load_engines
from pcpfuzz.ladder import Row, profiles, run_profile
from pcpfuzz.options import ENGINE, SECONDS, check_corpus, nothing_tested

DEFAULT_SECONDS = 5.0
"""Per-profile budget: thirteen profiles, about a minute."""
TABLE_WIDTH = 150
"""The narrowest table printed, also when stdout is not a terminal: switch names stay whole."""


def _table(rows: list[Row]) -> Table:
    table = Table()
    for column in ("profile", "what it adds", "examples", "found", "invariant", "shrunk length"):
        table.add_column(column, overflow="fold")
    for r in rows:
        found = "yes" if r.found else "no"
        if not r.ok:
            want = " or ".join(r.expected) or "nothing"
            found = f"[red]{found} (expected {want})[/red]"
        table.add_row(
            r.profile,
            r.adds,
            str(r.examples),
            found,
            r.invariant or "-",
            "-" if r.shrunk_length is None else str(r.shrunk_length),
        )
    return table


@click.command("ladder")
@ENGINE
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the run.")
@click.option(
    "--time",
    "seconds",
    default=DEFAULT_SECONDS,
    show_default=True,
    type=SECONDS,
    help="Seconds per profile; a profile stops at --time or --max-examples, whichever comes "
    "first, or at its first finding.",
)
@click.option(
    "--max-examples",
    type=click.IntRange(min=1),
    help="Examples per profile [default: no limit].",
)
@click.option(
    "--corpus",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save each shrunk counterexample under this corpus directory, with its must-pass "
    "profiles (a zoo bug's: the version it was put into).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per profile, per line.")
def command(
    engine: str,
    seed: int,
    seconds: float,
    max_examples: int | None,
    corpus: Path | None,
    as_json: bool,
) -> int:
    """Fuzz each rung (v5.10, each patch, v5.11) and each zoo bug; exit 1 when a rung finds
    something or a zoo bug is not found as expected, else 0."""
    engines = load_engines()
    budget = budget_for(engine, max_examples or 10**9, seconds)
    save = None
    check_corpus(corpus, (p.name for _, p in profiles()))
    if corpus is not None:

        def save(c: Campaign, must_pass: tuple[str, ...]) -> Path | None:
            assert c.failure is not None
            try:
                return save_failure(c.failure, corpus, {"engine": engine, "seed": seed}, must_pass)
            except ValueError as e:  # a WriteError, or a failure that does not reproduce
                click.echo(f"pcpfuzz ladder: {c.profile}: finding not saved: {e}", err=True)
                return None

    console = Console(stderr=True)
    rows = []
    for kind, profile in profiles():
        status = console.status(f"{profile.name}: {engine}")
        with status if console.is_terminal else contextlib.nullcontext():
            row = run_profile(kind, profile, engines[engine], seed, budget, save)
        if row.examples == 0 and not row.found:
            raise nothing_tested(row.profile, seconds)
        rows.append(row)
        if as_json:
            click.echo(json.dumps(row.as_dict()))
    if not as_json:
        Console(file=sys.stdout, width=max(Console().width, TABLE_WIDTH)).print(_table(rows))
    return 0 if all(r.ok for r in rows) else 1
