"""Shared pytest configuration: the Hypothesis settings profile (``dev``, ``ci`` or ``deep``)
from ``--pcpfuzz-settings`` or ``$PCPFUZZ_SETTINGS``, and the shared Redis example database from
``--pcpfuzz-db`` or ``$PCPFUZZ_DB`` (``stateful/settings.py``)."""

import pytest

from stateful.settings import DB_ENV, ENV, PROFILES, BadDatabase, UnknownSettings, load


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pcpfuzz-settings",
        choices=tuple(PROFILES),
        default=None,
        help=f"Hypothesis settings profile for the property suite (default: ${ENV} or dev).",
    )
    parser.addoption(
        "--pcpfuzz-db",
        metavar="URL",
        default=None,
        help=f"Share Hypothesis's example database in Redis at URL (default: ${DB_ENV}).",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        name = load(config.getoption("--pcpfuzz-settings"), config.getoption("--pcpfuzz-db"))
    except UnknownSettings as e:
        raise pytest.UsageError(f"{ENV}: {e}") from None
    except BadDatabase as e:
        raise pytest.UsageError(f"--pcpfuzz-db: {e}") from None
    config.pcpfuzz_settings = name  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str:
    return f"pcpfuzz settings: {config.pcpfuzz_settings}"  # type: ignore[attr-defined]
