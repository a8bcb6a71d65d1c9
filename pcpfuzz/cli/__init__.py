"""The ``pcpfuzz`` command: one click group, one module per subcommand."""

import click

from pcpfuzz.cli.profiles import command as profiles_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pcpfuzz")
def main() -> None:
    """Property-based fuzzing of the page allocator's pcplists, isolation and memory offline."""


main.add_command(profiles_command)
