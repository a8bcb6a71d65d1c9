"""``pcpfuzz crosscheck``: boot the real kernels, run the scenario, compare with the model.

Exit status: 0 when every check matches, 1 on any mismatch (or a boot that never finished), 2
when QEMU, busybox or a kernel image cannot be had (run ``scripts/crosscheck-setup.sh``).
"""

from pathlib import Path

import click
from rich.console import Console

from pcpfuzz.crosscheck import report
from pcpfuzz.crosscheck.compare import Check, compare
from pcpfuzz.crosscheck.guest import SCENARIO
from pcpfuzz.crosscheck.initramfs import build_initramfs
from pcpfuzz.crosscheck.model import ModelError
from pcpfuzz.crosscheck.qemu import BOOT_TIMEOUT_S, Boot, boot
from pcpfuzz.crosscheck.rules import RULES
from pcpfuzz.crosscheck.snapshot import ParseError, parse_capture
from pcpfuzz.crosscheck.tools import (
    KERNELS,
    Missing,
    cache_dir,
    find_image,
    find_tools,
    image_package,
)
from pcpfuzz.files import WriteError, check_writable_dir
from pcpfuzz.options import SECONDS

EXIT_MISMATCH = 1
EXIT_MISSING = 2


class NotSetUp(click.ClickException):
    """QEMU, busybox or an image is missing: one line naming it and the setup command."""

    exit_code = EXIT_MISSING


def boot_check(kernel: str, package: str, result: Boot) -> Check:
    """The ``boot`` line: the guest ran to its last step (time and attempts as the value)."""
    state = "completed" if result.completed else "did not finish (hang or crash)"
    value = f"{state} in {result.seconds:.1f} s, attempt {result.attempts} ({package})"
    return Check(kernel, "boot", value, "completes", result.completed)


def check_kernel(kernel: str, result: Boot, package: str) -> list[Check]:
    """The boot line, then every comparison of the guest's output with the model."""
    checks = [boot_check(kernel, package, result)]
    if not result.completed:
        return checks
    try:
        capture = parse_capture(result.data)
    except ParseError as error:
        return [*checks, Check(kernel, "guest output parses", str(error), "parses", False)]
    try:
        return checks + compare(capture, RULES[kernel])
    except ModelError as error:
        return [*checks, Check(kernel, "model runs the scenario", "captured", str(error), False)]


@click.command("crosscheck")
@click.option(
    "--kernel",
    "kernels",
    multiple=True,
    type=click.Choice(KERNELS),
    help="Kernel to check (repeatable); default: all of them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per check line.")
@click.option("--markdown", is_flag=True, help="Print the checks as a Markdown table.")
@click.option(
    "--timeout",
    type=SECONDS,
    default=BOOT_TIMEOUT_S,
    show_default=True,
    help="Seconds before a boot counts as hung (it is retried once).",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the initramfs and each boot's logs go; default: <cache>/runs.",
)
@click.pass_context
def crosscheck_command(
    ctx: click.Context,
    kernels: tuple[str, ...],
    as_json: bool,
    markdown: bool,
    timeout: float,
    workdir: Path | None,
) -> None:
    """Cross-check the model against Debian's 5.10, 6.1 and 6.12 kernels booted under QEMU."""
    runs = workdir or cache_dir() / "runs"
    try:
        check_writable_dir(runs)
    except WriteError as e:
        raise click.BadParameter(str(e), param_hint="--workdir") from None
    try:
        tools = find_tools()
        images = {k: find_image(k, cache_dir()) for k in kernels or KERNELS}
    except Missing as missing:
        raise NotSetUp(str(missing)) from None
    initrd = build_initramfs(tools.busybox, runs / "initrd.gz")
    checks: list[Check] = []
    for kernel, image in images.items():
        result = boot(tools, image, initrd, SCENARIO, runs / kernel, timeout)
        checks += check_kernel(kernel, result, image_package(image))
    if as_json:
        for line in report.json_lines(checks):
            click.echo(line)
    elif markdown:
        click.echo(report.markdown_table(checks))
    else:
        report.print_table(checks, Console())
    for line in report.summary(checks):
        click.echo(line, err=as_json or markdown)
    ctx.exit(0 if all(c.ok for c in checks) else EXIT_MISMATCH)
