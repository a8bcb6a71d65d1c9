"""The ``pcpfuzz`` command: one click group, one module per subcommand.

Subcommands return their exit status. ``run`` (the console entry point) turns every usage or
input error into one line on stderr and exit status 2.
"""

import sys

import click

from pcpfuzz import BUILD
from pcpfuzz.cli.fuzz import command as fuzz_command
from pcpfuzz.cli.ladder import command as ladder_command
from pcpfuzz.cli.profiles import command as profiles_command
from pcpfuzz.cli.prove import command as prove_command
from pcpfuzz.cli.replay import command as replay_command
from pcpfuzz.cli.show import command as show_command
from pcpfuzz.crosscheck.cli import crosscheck_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pcpfuzz", message=f"%(prog)s %(version)s, {BUILD.describe()}")
def main() -> None:
    """Property-based fuzzing of the page allocator's pcplists, isolation and memory offline."""


main.add_command(fuzz_command)
main.add_command(ladder_command)
main.add_command(profiles_command)
main.add_command(prove_command)
main.add_command(replay_command)
main.add_command(show_command)
main.add_command(crosscheck_command)


def run() -> None:
    """Console entry point: ``main`` with one-line errors and exit status 2 for bad input."""
    try:
        status = main.main(standalone_mode=False)
    except click.UsageError as e:
        culprit = f"{e.ctx.command_path}: " if e.ctx else "pcpfuzz: "
        click.echo(f"{culprit}error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"pcpfuzz: error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.Abort:
        click.echo("pcpfuzz: aborted", err=True)
        sys.exit(130)
    sys.exit(status if isinstance(status, int) else 0)
