"""``pcpfuzz fuzz``: run an engine on profiles, shrink what it finds, report, and save."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pcpfuzz.corpus import CORPUS_ENV, save_failure
from pcpfuzz.engines.base import Campaign, budget_for
from pcpfuzz.engines.registry import DEFAULT_ENGINE, load_engines
from pcpfuzz.ladder import geometry_for
from pcpfuzz.profiles import CAMPAIGN, UnknownProfile, get_profile

DEFAULT_SECONDS = 15.0
"""Per-profile budget of the embedded default campaign (four profiles: about a minute)."""


def _row(c: Campaign, entry: Path | None) -> dict[str, object]:
    f = c.failure
    return {
        "profile": c.profile,
        "engine": c.engine,
        "seed": c.seed,
        "found": f is not None,
        "invariant": None if f is None else f.violation.invariant,
        "actions": None if f is None else len(f.actions),
        "seconds": round(c.seconds, 3),
        "examples": c.examples,
        "model_steps": c.model_steps,
        "corpus_entry": None if entry is None else str(entry),
        "message": None if f is None else f.violation.message,
    }


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table("profile", "examples", "actions", "found", "invariant", "shrunk length", "time")
    for r in rows:
        table.add_row(
            str(r["profile"]),
            str(r["examples"]),
            str(r["model_steps"]),
            "[red]yes[/red]" if r["found"] else "no",
            str(r["invariant"] or "-"),
            str(r["actions"] or "-"),
            f"{r['seconds']:.1f}s",
        )
    return table


@click.command("fuzz")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    metavar="NAME",
    help="Profile to fuzz (repeatable). Default: every version profile, briefly.",
)
@click.option("--engine", default=DEFAULT_ENGINE, show_default=True, help="Exploration engine.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the run.")
@click.option("--max-examples", type=click.IntRange(min=1), help="Examples per profile.")
@click.option(
    "--time",
    "seconds",
    type=click.FloatRange(min=0, min_open=True),
    help=f"Seconds per profile [default: {DEFAULT_SECONDS:g}].",
)
@click.option(
    "--corpus",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=CORPUS_ENV,
    help=f"Save each shrunk counterexample under this corpus directory [env: {CORPUS_ENV}].",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per profile, per line.")
def command(
    profiles: tuple[str, ...],
    engine: str,
    seed: int,
    max_examples: int | None,
    seconds: float | None,
    corpus: Path | None,
    as_json: bool,
) -> int:
    """Fuzz kernel profiles; exit 1 when a violation is found, 0 when none is."""
    engines = load_engines()
    if engine not in engines:
        raise click.BadParameter(f"unknown engine {engine!r} (known: {', '.join(engines)})")
    try:
        chosen = [get_profile(n) for n in profiles] if profiles else list(CAMPAIGN)
    except UnknownProfile as e:
        raise click.BadParameter(str(e), param_hint="--profile") from None
    rows = []
    with _progress() as progress:
        for profile in chosen:
            task = progress.add_task(profile.name, examples=0, rate="-", found="")
            began = time.perf_counter()

            def report(
                examples: int, steps: int, task: TaskID = task, began: float = began
            ) -> None:
                rate = steps / max(time.perf_counter() - began, 1e-9)
                progress.update(task, examples=examples, rate=f"{rate:,.0f}")

            budget = budget_for(engine, max_examples or 10**9, seconds or DEFAULT_SECONDS, report)
            campaign = engines[engine](profile, geometry_for(profile.name), seed, budget)
            f = campaign.failure
            found = "nothing found" if f is None else f"[red]{f.violation.invariant}[/red]"
            progress.update(task, examples=campaign.examples, found=found)
            progress.stop_task(task)
            rows.append(_finish(campaign, corpus, engine, seed, profile.name))
            if as_json:
                click.echo(json.dumps(rows[-1]))
    if not as_json:
        Console(file=sys.stdout).print(_table(rows))
        for r in rows:
            if r["found"]:
                saved = f" (saved to {r['corpus_entry']})" if r["corpus_entry"] else ""
                click.echo(f"{r['profile']}: {r['invariant']} violated: {r['message']}{saved}")
    return 1 if any(r["found"] for r in rows) else 0


def _progress() -> Progress:
    """Examples, actions per second and findings per profile, on a terminal only (stderr)."""
    console = Console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<12}"),
        TextColumn("{task.fields[examples]:>7} examples"),
        TextColumn("{task.fields[rate]:>9} actions/s"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[found]}"),
        console=console,
        disable=not console.is_terminal,
    )


def _finish(
    campaign: Campaign, corpus: Path | None, engine: str, seed: int, name: str
) -> dict[str, object]:
    """The campaign's row, after saving its failure to ``corpus`` when asked."""
    entry = None
    if corpus is not None and campaign.failure is not None:
        try:
            entry = save_failure(campaign.failure, corpus, {"engine": engine, "seed": seed})
        except ValueError as e:
            click.echo(f"pcpfuzz fuzz: {name}: not saved: {e}", err=True)
    return _row(campaign, entry)
