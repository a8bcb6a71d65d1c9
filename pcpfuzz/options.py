"""Click parameter types shared by the commands."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click

from pcpfuzz.corpus import CORPUS_ENV, check_corpus_dir
from pcpfuzz.engines.registry import DEFAULT_ENGINE, ENGINE_NAMES
from pcpfuzz.files import WriteError


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


def corpus_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--corpus DIR`` (or ``PCPFUZZ_CORPUS``): where a command saves ``what``."""
    return click.option(
        "--corpus",
        type=click.Path(file_okay=False, path_type=Path),
        envvar=CORPUS_ENV,
        help=f"Save {what} under this corpus directory [env: {CORPUS_ENV}].",
    )


def check_corpus(corpus: Path | None, profiles: Iterable[str]) -> None:
    """``check_corpus_dir`` before anything runs, as a ``--corpus`` usage error (exit 2)."""
    if corpus is None:
        return
    try:
        check_corpus_dir(corpus, list(profiles))
    except WriteError as e:
        raise click.BadParameter(str(e), param_hint="--corpus") from None
