"""``pcpfuzz replay``: replay corpus entries; exit 0 when all behave as recorded, 1 when any
diverges, 2 when any cannot be read."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from pcpfuzz.corpus import MalformedEntry
from pcpfuzz.files import WriteError
from pcpfuzz.replay import Divergence, ReplayResult, describe, replay_paths, update_trace
from pcpfuzz.trace import END


def _summary(result: ReplayResult) -> str:
    e = result.entry
    fixed = f"; passes on {', '.join(e.must_pass)}" if e.must_pass else ""
    expect = describe(e.expect).split(":")[0]
    return f"{e.profile}, {len(e.actions)} actions: {expect}{fixed}"


def _where(result: ReplayResult, d: Divergence) -> str:
    if d.at is None:
        return "not tied to one action"
    if d.at == END:
        return "at rest, after the last action"
    return f"at action {d.at} ({result.entry.actions[d.at]})"


def _report(out: Console, result: ReplayResult) -> None:
    path = str(result.path)
    if result.ok:
        out.print(Text.assemble(("ok        ", "green"), path, f"  {_summary(result)}"))
        if result.trace_stale:
            out.print(
                Text(
                    "  note: the trace rendering changed (the outcome holds); "
                    "'pcpfuzz replay --update-traces' rewrites it",
                    style="dim",
                )
            )
        return
    out.print(Text.assemble(("DIVERGED  ", "bold red"), path, f"  {_summary(result)}"))
    for d in result.divergences:
        out.print(Text(f"  on {d.profile}, behaviour first differs {_where(result, d)}:"))
        out.print(Text(f"    expected: {d.expected}"))
        out.print(Text(f"    actual:   {d.actual}", style="red"))
    hint = result.first_trace_difference()
    if hint is not None:
        out.print(Text(f"  trace: first differs {hint}", style="dim"))


@click.command("replay")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--update-traces",
    is_flag=True,
    help="Rewrite the trace rendering of entries that behave as recorded but render differently.",
)
@click.pass_context
def command(ctx: click.Context, paths: tuple[Path, ...], update_traces: bool) -> None:
    """Replay corpus entries (files, or directories searched for *.json; default corpus/).

    Exit 0 when every entry behaves as recorded, 1 when any diverges, 2 when any is
    malformed (bad JSON, unknown field, profile or operation, or an action not enabled), when
    a trace cannot be updated, or when there is nothing to replay."""
    _check_paths(paths)
    out = Console(file=sys.stdout, soft_wrap=True, highlight=False)
    err = Console(file=sys.stderr, soft_wrap=True, highlight=False)
    ok = diverged = malformed = unwritten = 0
    for result in replay_paths(paths or (Path("corpus"),)):
        if isinstance(result, MalformedEntry):
            malformed += 1
            err.print(Text.assemble(("malformed ", "bold red"), str(result)))
            continue
        _report(out, result)
        if result.ok:
            ok += 1
            if update_traces and result.trace_stale:
                try:
                    out.print(Text(f"  updated the trace of {update_trace(result)}"))
                except WriteError as e:
                    unwritten += 1
                    err.print(Text.assemble(("not updated ", "bold red"), str(e)))
        else:
            diverged += 1
    total = ok + diverged + malformed
    if total == 0:
        raise click.UsageError(
            f"no *.json entries under {', '.join(map(str, paths))}: nothing replayed"
        )
    counts = f"{ok} ok, {diverged} diverged, {malformed} malformed"
    out.print(f"{total} {'entry' if total == 1 else 'entries'}: {counts}")
    ctx.exit(2 if malformed or unwritten else 1 if diverged else 0)


def _check_paths(paths: tuple[Path, ...]) -> None:
    """Every path named exists; with none named, ``corpus/`` is here."""
    if not paths and not Path("corpus").is_dir():
        raise click.UsageError(
            "no corpus/ directory here: run from the repository's top, or name entries or "
            "directories to replay"
        )
    for p in paths:
        if not p.exists():
            raise click.BadParameter(f"{p}: no such file or directory", param_hint="PATHS")
