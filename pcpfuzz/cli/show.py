"""``pcpfuzz show ENTRY``: a corpus entry as a kernel-style log and as per-CPU swim lanes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import click
from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from pcpfuzz.corpus import MalformedEntry, load_entry, profile_of
from pcpfuzz.files import WriteError, write_atomically
from pcpfuzz.lanes import lanes_view
from pcpfuzz.render import format_plain, render
from pcpfuzz.replay import describe
from pcpfuzz.system import NotEnabled

SVG_WIDTH = 160
SVG_FONTS = 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace'
"""System monospace fonts: the picture renders offline (rich's default loads Fira Code from a
CDN)."""


@click.command("show")
@click.argument("entry", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--svg",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the picture to this SVG file.",
)
def command(entry: Path, svg: Path | None) -> int:
    """Show a counterexample: its kernel-style log, swim lanes and the state where it stops."""
    if svg is not None and not svg.parent.is_dir():
        raise click.BadParameter(f"{svg.parent} is not a directory", param_hint="--svg")
    try:
        e = load_entry(entry)
        rendering = render(profile_of(e), e.geometry, e.actions)
    except (MalformedEntry, NotEnabled) as err:
        msg = f"{entry}: {err}" if isinstance(err, NotEnabled) else str(err)
        raise click.ClickException(msg) from None
    found = f"{e.found_by.engine}" + (
        f", seed {e.found_by.seed}" if e.found_by.seed is not None else ""
    )
    header = Text.assemble(
        (f"{entry}", "bold"),
        f"\nprofile {e.profile}: {profile_of(e).description}\n",
        f"expected: {describe(e.expect)}; must pass on: {', '.join(e.must_pass) or '-'}; ",
        f"found by {found}; {len(e.actions)} actions",
    )
    log = Panel("\n".join(format_plain(rendering)), title="kernel-style log")
    picture = Group(header, log, lanes_view(rendering))
    Console().print(picture)
    if svg is not None:
        recorder = Console(record=True, width=SVG_WIDTH, file=io.StringIO())
        recorder.print(picture)
        try:
            write_atomically(
                svg, offline_svg(recorder.export_svg(title=f"pcpfuzz show {entry.name}"))
            )
        except WriteError as err:
            raise click.ClickException(str(err)) from None
    return 0


def offline_svg(svg: str) -> str:
    """Rich's SVG without its web fonts: no ``@font-face``, the system's monospace fonts."""
    svg = re.sub(r"\s*@font-face \{[^}]*\}", "", svg)
    return re.sub(r"font-family: Fira Code, monospace", f"font-family: {SVG_FONTS}", svg)
