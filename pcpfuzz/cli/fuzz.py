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

from pcpfuzz.campaign import SCHEDULER_ENV
from pcpfuzz.cli.sigint import sticky_sigint
from pcpfuzz.corpus import save_failure
from pcpfuzz.engines.base import Campaign, budget_for
from pcpfuzz.engines.registry import load_engines
from pcpfuzz.ladder import geometry_for
from pcpfuzz.options import ENGINE, SECONDS, check_corpus, corpus_option, nothing_tested
from pcpfuzz.profiles import CAMPAIGN, UnknownProfile, get_profile

DEFAULT_SECONDS = 15.0
"""Per-profile budget of the embedded default campaign (four profiles: about a minute)."""
PLAIN_PROGRESS_SECONDS = 10.0
"""How often a plain progress line goes to stderr when it is not a terminal."""
EXIT_INTERRUPTED = 130


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
    help="Profile to fuzz (repeatable; 'pcpfuzz profiles' lists them). Default: the version "
    f"profiles {', '.join(p.name for p in CAMPAIGN)}.",
)
@ENGINE
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the run.")
@click.option(
    "--max-examples",
    type=click.IntRange(min=1),
    help="Examples per profile; a profile stops at --max-examples or --time, whichever comes "
    "first, or at its first finding [default: no limit].",
)
@click.option(
    "--time",
    "seconds",
    type=SECONDS,
    help=f"Seconds per profile (see --max-examples) [default: {DEFAULT_SECONDS:g}].",
)
@corpus_option("each shrunk counterexample")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per profile, per line.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Run the campaign on N local worker processes (a Dask LocalCluster).",
)
@click.option(
    "--scheduler",
    envvar=SCHEDULER_ENV,
    metavar="tcp://HOST:PORT",
    help=f"Run the campaign on this Dask scheduler's workers [env: {SCHEDULER_ENV}].",
)
def command(
    profiles: tuple[str, ...],
    engine: str,
    seed: int,
    max_examples: int | None,
    seconds: float | None,
    corpus: Path | None,
    as_json: bool,
    workers: int | None,
    scheduler: str | None,
) -> int:
    """Fuzz kernel profiles; exit 1 when a violation is found, 0 when none is, 2 on bad input
    (or a budget too small for one example), 130 when interrupted (what was found is shown)."""
    engines = load_engines()
    try:
        chosen = [get_profile(n) for n in profiles] if profiles else list(CAMPAIGN)
    except UnknownProfile as e:
        raise click.BadParameter(str(e), param_hint="--profile") from None

    def checked() -> None:
        check_corpus(corpus, (p.name for p in chosen))

    if workers is not None or scheduler is not None:
        from pcpfuzz.campaign.cli import distributed  # imports Dask: only when asked

        budget = seconds or DEFAULT_SECONDS
        cluster = {"workers": workers, "scheduler": scheduler, "check_corpus": checked}
        return distributed(chosen, engine, seed, max_examples, budget, corpus, as_json, **cluster)
    checked()
    rows: list[dict[str, object]] = []
    status = None
    running = ""
    try:
        with sticky_sigint() as sigint, _progress() as progress:
            for profile in chosen:
                task = progress.add_task(profile.name, examples=0, rate="-", found="")
                began = time.perf_counter()
                plain = _PlainProgress(profile.name, began, not progress.disable)

                def report(
                    examples: int,
                    steps: int,
                    task: TaskID = task,
                    began: float = began,
                    plain: _PlainProgress = plain,
                ) -> None:
                    sigint.check()
                    rate = steps / max(time.perf_counter() - began, 1e-9)
                    progress.update(task, examples=examples, rate=f"{rate:,.0f}")
                    plain.report(examples, rate)

                budget = budget_for(
                    engine, max_examples or 10**9, seconds or DEFAULT_SECONDS, report
                )
                running = f" during {profile.name}"
                campaign = engines[engine](profile, geometry_for(profile.name), seed, budget)
                f = campaign.failure
                if f is None and campaign.examples == 0:
                    status = nothing_tested(profile.name, seconds or DEFAULT_SECONDS)
                    break
                found = "nothing found" if f is None else f"[red]{f.violation.invariant}[/red]"
                progress.update(task, examples=campaign.examples, found=found)
                progress.stop_task(task)
                rows.append(_finish(campaign, corpus, engine, seed, profile.name))
                running = ""
                plain.done(rows[-1])
                if as_json:
                    click.echo(json.dumps(rows[-1]))
    except KeyboardInterrupt:
        status = f"interrupted{running}; the profiles reported ran to their end"
    if not as_json and rows:
        Console(file=sys.stdout).print(_table(rows))
    if not as_json:
        for r in rows:
            if r["found"]:
                saved = f" (saved to {r['corpus_entry']})" if r["corpus_entry"] else ""
                click.echo(f"{r['profile']}: {r['invariant']} violated: {r['message']}{saved}")
    if isinstance(status, click.ClickException):
        raise status
    if status is not None:
        click.echo(f"pcpfuzz fuzz: {status}", err=True)
        return EXIT_INTERRUPTED
    return 1 if any(r["found"] for r in rows) else 0


class _PlainProgress:
    """Where stderr is not a terminal (no progress bar): a plain line every
    ``PLAIN_PROGRESS_SECONDS`` while a profile runs, and one when it ends."""

    def __init__(self, profile: str, began: float, muted: bool) -> None:
        self.profile, self.began, self.muted = profile, began, muted
        self.last = began

    def report(self, examples: int, rate: float) -> None:
        now = time.perf_counter()
        if self.muted or now - self.last < PLAIN_PROGRESS_SECONDS:
            return
        self.last = now
        self._say(f"{examples} examples, {rate:,.0f} actions/s, {now - self.began:.0f} s")

    def done(self, row: dict[str, object]) -> None:
        found = f"{row['invariant']} found" if row["found"] else "nothing found"
        self._say(f"{found} in {row['examples']} examples, {row['seconds']:.1f} s")

    def _say(self, what: str) -> None:
        if not self.muted:
            click.echo(f"pcpfuzz fuzz: {self.profile}: {what}", err=True)


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
        except ValueError as e:  # a WriteError, or a failure that does not reproduce
            click.echo(f"pcpfuzz fuzz: {name}: the finding below was not saved: {e}", err=True)
    return _row(campaign, entry)
