"""Click parameter types shared by the commands."""

from __future__ import annotations

import math
from typing import Any

import click

from pcpfuzz.engines.registry import DEFAULT_ENGINE, ENGINE_NAMES


class FiniteSeconds(click.ParamType):
    """A number of seconds, finite and above 0 (``nan``, ``inf``, 0 and less are refused)."""

    name = "SECONDS"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(seconds) or seconds <= 0:
            self.fail(f"{value!r} is not a finite number of seconds above 0", param, ctx)
        return seconds


SECONDS = FiniteSeconds()


def nothing_tested(profile: str, seconds: float) -> click.BadParameter:
    """A campaign that ran no example tested nothing: an error about ``--time``, not a pass."""
    return click.BadParameter(
        f"{profile}: {seconds:g} s ran out before the first example ended, so nothing was "
        "tested; give more time",
        param_hint="--time",
    )


ENGINE = click.option(
    "--engine",
    default=DEFAULT_ENGINE,
    show_default=True,
    type=click.Choice(ENGINE_NAMES),
    help="Exploration engine.",
)
"""The ``--engine`` option of the commands that run a campaign."""
