"""Print check lines: a table for people, one JSON object per line, or a Markdown table."""

import json
from collections.abc import Iterator, Sequence

from rich.console import Console
from rich.table import Table

from pcpfuzz.crosscheck.compare import Check


def result_text(check: Check) -> str:
    return "match" if check.ok else "MISMATCH"


def json_lines(checks: Sequence[Check]) -> Iterator[str]:
    """One JSON object per check."""
    for c in checks:
        yield json.dumps(
            {
                "kernel_version": c.kernel_version,
                "check": c.name,
                "kernel": c.kernel,
                "model": c.model,
                "result": result_text(c),
            }
        )


def markdown_table(checks: Sequence[Check]) -> str:
    """The checks as a Markdown table (for the README's "validated against real kernels")."""
    rows = ["| kernel | check | kernel's value | model's value | result |", "|---|---|---|---|---|"]
    for c in checks:
        cells = (c.kernel_version, c.name, c.kernel, c.model, result_text(c))
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def print_table(checks: Sequence[Check], console: Console) -> None:
    """A rich table of the checks."""
    table = Table(title="pcpfuzz crosscheck: real kernels against the model")
    for column in ("kernel", "check", "kernel's value", "model's value", "result"):
        table.add_column(column, overflow="fold")
    for c in checks:
        style = None if c.ok else "bold red"
        table.add_row(c.kernel_version, c.name, c.kernel, c.model, result_text(c), style=style)
    console.print(table)


def summary(checks: Sequence[Check]) -> Iterator[str]:
    """One line per kernel (matches out of checks), then one line per mismatch."""
    versions = dict.fromkeys(c.kernel_version for c in checks)
    for v in versions:
        mine = [c for c in checks if c.kernel_version == v]
        good = sum(c.ok for c in mine)
        yield f"{v}: {good}/{len(mine)} checks match"
    for c in checks:
        if not c.ok:
            yield f"MISMATCH {c.kernel_version} {c.name}: kernel {c.kernel!r}, model {c.model!r}"
