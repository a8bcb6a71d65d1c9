"""``pcpfuzz profiles``: the profiles, their one-line descriptions and their switches."""

import json

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pcpfuzz.profiles import PROFILES


@click.command("profiles")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per profile, per line.")
def command(as_json: bool) -> None:
    """List the kernel profiles: versions, each patch of the series, and known bugs."""
    if as_json:
        for p in PROFILES.values():
            click.echo(json.dumps({"name": p.name, "description": p.description, **p.switches()}))
        return
    base = PROFILES["v5.10"].switches()
    # Two columns, so that at 80 columns nothing is cut: the description wraps, and under it
    # each switch that differs from v5.10 has a line of its own.
    table = Table(show_lines=True)
    table.add_column("profile", no_wrap=True)
    table.add_column("description, and the switches that differ from v5.10", overflow="fold")
    for p in PROFILES.values():
        diff = [f"{k}={v}" for k, v in p.switches().items() if base[k] != v]
        table.add_row(p.name, Text("\n").join([Text(p.description), *map(_switch, diff)]))
    Console().print(table)


def _switch(text: str) -> Text:
    return Text(f"  {text}", style="cyan")
