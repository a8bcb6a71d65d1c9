"""``pcpfuzz fuzz --workers N`` / ``--scheduler ADDRESS``: the distributed campaign, reported as
the serial one is (the table, ``--json``, the finding lines), with each finding saved on the
client as it comes home."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pcpfuzz.campaign.cluster import Runner, Unreachable, connect, threads
from pcpfuzz.campaign.tally import ProfileTally
from pcpfuzz.campaign.units import Outcome, unit_size
from pcpfuzz.cli.fuzz import _row
from pcpfuzz.corpus import save_failure
from pcpfuzz.profiles import Profile


class Saver:
    """Saves each distinct finding to ``corpus`` once (content-hash names make a finding from
    two workers one file anyway; this also spares rendering it twice)."""

    def __init__(self, corpus: Path | None) -> None:
        self.corpus = corpus
        self.entries: dict[tuple[object, ...], Path | None] = {}

    def __call__(self, outcome: Outcome) -> None:
        f = outcome.campaign.failure
        if f is None or self.corpus is None or self.key(outcome) in self.entries:
            return
        found_by = {"engine": outcome.unit.engine, "seed": outcome.unit.seed}
        try:
            entry: Path | None = save_failure(f, self.corpus, found_by)
        except ValueError as e:
            click.echo(f"pcpfuzz fuzz: {outcome.unit.profile}: not saved: {e}", err=True)
            entry = None
        self.entries[self.key(outcome)] = entry

    @staticmethod
    def key(outcome: Outcome) -> tuple[object, ...]:
        f = outcome.campaign.failure
        return () if f is None else (f.profile.name, f.geometry, f.actions)

    def entry(self, outcome: Outcome | None) -> Path | None:
        return None if outcome is None else self.entries.get(self.key(outcome))

    @property
    def saved(self) -> int:
        return sum(p is not None for p in self.entries.values())


def distributed(
    profiles: Sequence[Profile],
    engine: str,
    seed: int,
    max_examples: int | None,
    seconds: float,
    corpus: Path | None,
    as_json: bool,
    *,
    workers: int | None,
    scheduler: str | None,
    check_corpus: Callable[[], None],
) -> int:
    """Run the campaign on the cluster; exit status as ``pcpfuzz fuzz``'s. ``check_corpus``
    runs once the cluster is reached (a bad scheduler leaves no corpus directory behind)."""
    if workers is not None and scheduler is not None:
        raise click.UsageError("give --workers or --scheduler (or PCPFUZZ_SCHEDULER), not both")
    examples = max_examples or 10**9
    saver = Saver(corpus)
    try:
        with connect(workers, scheduler) as client:
            check_corpus()
            size = unit_size(examples, threads(client))
            tallies = [
                ProfileTally.start(p.name, engine, seed, examples, seconds, size) for p in profiles
            ]
            with _progress() as progress:
                line = _Line(tallies, progress)
                _run(Runner(client, tallies, saver, line.report), saver, corpus)
    except Unreachable as e:
        raise click.BadParameter(str(e), param_hint="--scheduler") from None
    rows = [_profile_row(t, saver, size) for t in tallies]
    _report(rows, as_json)
    return 1 if any(r["found"] for r in rows) else 0


def _run(runner: Runner, saver: Saver, corpus: Path | None) -> None:
    """``runner.run()``; on Ctrl-C, say what was kept before the interrupt goes on."""
    try:
        runner.run()
    except KeyboardInterrupt:
        where = f" in {corpus}" if corpus is not None else ""
        click.echo(
            "pcpfuzz fuzz: interrupted: cancelled the units still out; "
            f"{saver.saved} finding(s) saved{where}",
            err=True,
        )
        raise


class _Line:
    """The campaign's progress line: units done, actions per second, profiles with findings."""

    def __init__(self, tallies: Sequence[ProfileTally], progress: Progress) -> None:
        self.tallies = tallies
        self.progress = progress
        self.task = progress.add_task("campaign", units=0, rate="-", found="-")
        self.began = time.monotonic()

    def report(self, units: int, steps: int) -> None:
        rate = steps / max(time.monotonic() - self.began, 1e-9)
        found = ", ".join(t.profile for t in self.tallies if t.finders) or "-"
        self.progress.update(self.task, units=units, rate=f"{rate:,.0f}", found=found)


def _profile_row(t: ProfileTally, saver: Saver, size: int) -> dict[str, object]:
    c = t.campaign()
    return {
        **_row(c, saver.entry(t.finding)),
        "actions_per_second": round(c.model_steps / max(c.seconds, 1e-9)),
        "first_finder": t.first_finder(),
        "units": t.sent,
        "unit_examples": size,
        "retried": t.retried,
        "lost": t.lost,
    }


def _report(rows: list[dict[str, object]], as_json: bool) -> None:
    for r in rows:
        for line in [*r["retried"], *r["lost"]]:  # type: ignore[misc]
            click.echo(f"pcpfuzz fuzz: {line}", err=True)
    if as_json:
        for r in rows:
            click.echo(json.dumps(r))
        return
    Console(file=sys.stdout).print(_table(rows))
    for r in rows:
        if r["found"]:
            saved = f" (saved to {r['corpus_entry']})" if r["corpus_entry"] else ""
            click.echo(f"{r['profile']}: {r['invariant']} violated: {r['message']}{saved}")


def _finder(r: dict[str, object]) -> str:
    f = r["first_finder"]
    if not isinstance(f, dict):
        return "-"
    return f"seed {f['seed']} #{f['example']}"


def _table(rows: list[dict[str, object]]) -> Table:
    table = Table(
        "profile", "examples", "actions", "actions/s", "found", "invariant", "shrunk length",
        "first finder", "time",
    )  # fmt: skip
    for r in rows:
        table.add_row(
            str(r["profile"]),
            str(r["examples"]),
            str(r["model_steps"]),
            f"{r['actions_per_second']:,}",
            "[red]yes[/red]" if r["found"] else "no",
            str(r["invariant"] or "-"),
            str(r["actions"] or "-"),
            _finder(r),
            f"{r['seconds']:.1f}s",
        )
    return table


def _progress() -> Progress:
    """One line for the whole campaign, on a terminal only (stderr)."""
    console = Console(stderr=True)
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.fields[units]:>6} units done"),
        TextColumn("{task.fields[rate]:>9} actions/s"),
        TimeElapsedColumn(),
        TextColumn("found: {task.fields[found]}"),
        console=console,
        disable=not console.is_terminal,
    )
