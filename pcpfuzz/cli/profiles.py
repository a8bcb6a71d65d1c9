"""``pcpfuzz profiles``: the profiles, their one-line descriptions and their switches."""

import json

import click
from rich.console import Console
from rich.table import Table

from pcpfuzz.profiles import PROFILES


@click.command("profiles")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per profile, per line.")
def command(as_json: bool) -> None:
    """List the kernel profiles: versions, each patch of the series, and known bugs."""
    if as_json:
        for p in PROFILES.values():
            click.echo(json.dumps({"name": p.name, "description": p.description, **p.switches()}))
        return
    table = Table("profile", "description", "switches that differ from v5.10")
    base = PROFILES["v5.10"].switches()
    for p in PROFILES.values():
        diff = [f"{k}={v}" for k, v in p.switches().items() if base[k] != v]
        table.add_row(p.name, p.description, ", ".join(diff) or "-")
    Console().print(table)
