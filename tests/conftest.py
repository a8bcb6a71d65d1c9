"""Shared pytest configuration: the Hypothesis settings profile (``dev``, ``ci`` or ``deep``)
from ``--pcpfuzz-settings`` or ``$PCPFUZZ_SETTINGS`` (``stateful/settings.py``)."""

import pytest

from stateful.settings import ENV, PROFILES, UnknownSettings, load


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pcpfuzz-settings",
        choices=tuple(PROFILES),
        default=None,
        help=f"Hypothesis settings profile for the property suite (default: ${ENV} or dev).",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        name = load(config.getoption("--pcpfuzz-settings"))
    except UnknownSettings as e:
        raise pytest.UsageError(f"{ENV}: {e}") from None
    config.pcpfuzz_settings = name  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str:
    return f"pcpfuzz settings: {config.pcpfuzz_settings}"  # type: ignore[attr-defined]
