"""``pcpfuzz prove``: every schedule of a small configuration, within bounds (issue 14).

Exit status 0: proved within the bounds; 1: a violation (the shortest counterexample is
rendered, and saved with ``--corpus``); 2: bad input; 3: ``--max-states`` or ``--time`` stopped
the search before it closed.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import click
from rich.console import Console

from pcpfuzz import BUILD
from pcpfuzz.corpus import CORPUS_ENV, FoundBy, save_failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.liveness import OFFLINE_BOUND
from pcpfuzz.options import SECONDS, check_corpus, corpus_option
from pcpfuzz.profiles import UnknownProfile, get_profile
from pcpfuzz.prove.canonical import PURE_ONLY
from pcpfuzz.prove.explore import Bounds, Proof, Stats, prove
from pcpfuzz.prove.report import cuts, progress_line, verdict_line
from pcpfuzz.prove.scope import SPIN_OPS, BadScope, parse_scope
from pcpfuzz.render import format_plain, render

EXIT = {"proved": 0, "violation": 1, "limit": 3}
BLOCK_PAGES = 4
"""Pages per memory block: one pageblock of 4 pages, the size of Spin's model."""


def prove_geometry(
    cpus: int, blocks: int, online: int | None, fraction: int, scale: int | None
) -> Geometry:
    """``blocks`` blocks of one 4-page pageblock (MAX_ORDER 3), on ``cpus`` CPUs. The default
    sizing scale gives pcp high 4 / batch 1 with up to 8 blocks online, as in Spin's model."""
    if scale is None:
        scale = max(1, 32 // (BLOCK_PAGES * (blocks if online is None else max(online, 1))))
    return Geometry(
        nr_blocks=blocks,
        block_pages=BLOCK_PAGES,
        pageblock_order=2,
        max_order=3,
        nr_cpus=cpus,
        fraction=fraction,
        sizing_scale=scale,
        online_blocks=online,
    )


def _preemptions(value: str) -> int | None:
    if value == "none":
        return None
    if value.isdigit():
        return int(value)
    raise click.BadParameter(f"{value!r} is not a count or 'none'", param_hint="--preemptions")


@click.command("prove")
@click.option("--profile", "profile_name", required=True, metavar="NAME", help="Profile.")
@click.option("--cpus", default=2, show_default=True, type=click.IntRange(1, 8))
@click.option("--blocks", default=1, show_default=True, type=click.IntRange(1, 8))
@click.option("--online-blocks", type=click.IntRange(0, 8), help="Blocks online at boot.")
@click.option("--fraction", default=8, show_default=True, type=int, help="Boot sysctl value.")
@click.option("--sizing-scale", type=click.IntRange(min=1), help="Managed-page multiplier.")
@click.option(
    "--ops",
    default="spin",
    show_default=True,
    help=f"Operations and extra action kinds in scope (spin = {SPIN_OPS}).",
)
@click.option(
    "--preemptions",
    default="2",
    show_default=True,
    help="Preemption bound K, or 'none'.",
)
@click.option("--depth", type=click.IntRange(min=1), help="Depth bound (actions from boot).")
@click.option(
    "--retries",
    default=OFFLINE_BOUND,
    show_default=True,
    type=click.IntRange(min=1),
    help="Retry-loop passes after which a state is a leaf (OFFLINE-TERM's bound).",
)
@click.option("--dfs", is_flag=True, help="Depth-first (less memory; not the shortest trace).")
@click.option("--max-states", type=click.IntRange(min=1), help="Give up (exit 3) after this.")
@click.option("--time", "seconds", type=SECONDS, help="Give up after this (exit 3).")
@corpus_option("the counterexample")
@click.option("--json", "as_json", is_flag=True, help="The verdict as one JSON object.")
def command(
    profile_name: str,
    cpus: int,
    blocks: int,
    online_blocks: int | None,
    fraction: int,
    sizing_scale: int | None,
    ops: str,
    preemptions: str,
    depth: int | None,
    retries: int,
    dfs: bool,
    max_states: int | None,
    seconds: float | None,
    corpus: Path | None,
    as_json: bool,
) -> int:
    """Explore every schedule of the operations in scope; exit 0 proved, 1 violation, 3 limit."""
    try:
        profile = get_profile(profile_name)
    except UnknownProfile as e:
        raise click.BadParameter(str(e), param_hint="--profile") from None
    try:
        geometry = prove_geometry(cpus, blocks, online_blocks, fraction, sizing_scale)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    try:
        scope = parse_scope(ops, cpus)
    except BadScope as e:
        raise click.BadParameter(str(e), param_hint="--ops") from None
    check_corpus(corpus, [profile.name])
    bounds = Bounds(_preemptions(preemptions), depth, retries, max_states, seconds, dfs)
    if BUILD.compiled:
        raise click.UsageError(PURE_ONLY)
    online = blocks if online_blocks is None else online_blocks
    k = "unbounded" if bounds.preemptions is None else f"<= {bounds.preemptions}"
    header = (
        f"{profile.name} on {cpus} CPUs x {blocks} block{'s' * (blocks > 1)} "
        f"({online} online, {BLOCK_PAGES} pages each); ops {scope}; preemptions {k}; "
        f"{'DFS' if dfs else 'BFS'}"
    )
    console = Console(stderr=True)
    with console.status("", spinner="dots") as status:
        live = console.is_terminal and not as_json

        def progress(st: Stats) -> None:
            if live:
                status.update(progress_line(st))

        proof = prove(profile, geometry, scope, bounds, progress)
    entry = _save(proof, corpus) if proof.failure is not None else None
    if as_json:
        click.echo(json.dumps(_json(proof, bounds, header, entry)))
    else:
        click.echo(header)
        click.echo(verdict_line(proof, bounds))
        if proof.verdict != "violation":
            click.echo(cuts(proof.stats, bounds))
        else:
            _show(proof, entry)
    return EXIT[proof.verdict]


def _save(proof: Proof, corpus: Path | None) -> Path | None:
    assert proof.failure is not None
    if corpus is None:
        return None
    try:
        return save_failure(proof.failure, corpus, FoundBy("prove"))
    except ValueError as e:
        click.echo(f"pcpfuzz prove: not saved: {e}", err=True)
        return None


def _show(proof: Proof, entry: Path | None) -> None:
    f = proof.failure
    assert f is not None
    click.echo(f"shortest counterexample ({len(f.actions)} actions):")
    for line in format_plain(render(f.profile, f.geometry, f.actions)):
        click.echo(f"  {line}")
    click.echo(f"saved to {entry}" if entry else f"not saved (no --corpus, no {CORPUS_ENV})")


def _json(proof: Proof, bounds: Bounds, header: str, entry: Path | None) -> dict[str, object]:
    f = proof.failure
    return {
        "config": header,
        "verdict": proof.verdict,
        "limit": proof.limit,
        "bounds": attrs.asdict(bounds),
        "stats": {**attrs.asdict(proof.stats), "cut": proof.stats.cut, "rate": proof.stats.rate},
        "invariant": None if f is None else f.violation.invariant,
        "message": None if f is None else f.violation.message,
        "actions": None if f is None else [str(a) for a in f.actions],
        "corpus_entry": None if entry is None else str(entry),
    }
