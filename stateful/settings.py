"""Hypothesis settings profiles for the property suite: ``dev``, ``ci`` and ``deep``.

``load()`` picks one by name: the pytest option ``--pcpfuzz-settings``, else the environment
variable ``PCPFUZZ_SETTINGS``, else ``dev``. Examples are ``stateful_step_count`` actions long.
With ``--pcpfuzz-db URL`` or ``PCPFUZZ_DB`` the example database is Hypothesis's Redis one at
``URL``, shared by every machine that names it (a profile without a database, ``ci``, refuses).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import ExampleDatabase

ENV = "PCPFUZZ_SETTINGS"
DB_ENV = "PCPFUZZ_DB"
DEFAULT = "dev"
_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
PROFILES: dict[str, settings] = {
    "dev": settings(max_examples=100, stateful_step_count=25, **_COMMON),
    "ci": settings(
        max_examples=200,
        stateful_step_count=25,
        derandomize=True,
        database=None,
        print_blob=True,
        phases=tuple(p for p in Phase if p is not Phase.explain),
        **_COMMON,
    ),
    "deep": settings(max_examples=5000, stateful_step_count=50, **_COMMON),
}
"""``dev``: quick, with the local example database. ``ci``: deterministic (derandomized, no
database reads or writes), without the ``explain`` phase, and a failure prints a reproduction
blob. ``deep``: long runs, longer examples. Under every profile the failure the state machine
reports also carries the trace ``pcpfuzz.shrink`` makes of Hypothesis's shrunk one.

Examples are 25 actions long: on v5.9-nofix that finds the §15.1 race in less time than 15, 20,
30 or 50 (measured), and keeps failures short to shrink."""


DATABASE_FREE = frozenset({"ci"})
"""The profiles that refuse a shared database. Asked by name: where the ``CI`` variable is set,
Hypothesis's own defaults have no database, so every profile's ``database`` reads None there."""


class UnknownSettings(KeyError):
    """A settings profile name that is not in ``PROFILES``."""

    def __str__(self) -> str:
        return f"unknown settings profile {self.args[0]!r} (known: {', '.join(PROFILES)})"


class BadDatabase(ValueError):
    """A ``--pcpfuzz-db`` that cannot be used: one line naming it."""


def database(url: str) -> ExampleDatabase:
    """Hypothesis's Redis example database at ``url`` (``redis://HOST:PORT[/DB]``), checked to
    answer; raises ``BadDatabase``."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise BadDatabase(f"{url!r} is not a Redis URL (redis://HOST:PORT[/DB])")
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise BadDatabase("a Redis database needs hypothesis[redis] (pcpfuzz[cluster])") from None
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as e:
        raise BadDatabase(f"cannot reach {url}: {e}") from None
    return RedisExampleDatabase(client, key_prefix=b"pcpfuzz-hypothesis:")


def register() -> None:
    """Register every profile with Hypothesis."""
    for name, value in PROFILES.items():
        settings.register_profile(name, value)


def chosen(option: str | None = None) -> str:
    """The profile name: ``option`` if given, else ``$PCPFUZZ_SETTINGS``, else ``dev``;
    raises ``UnknownSettings``."""
    name = option or os.environ.get(ENV) or DEFAULT
    if name not in PROFILES:
        raise UnknownSettings(name)
    return name


def load(option: str | None = None, db: str | None = None) -> str:
    """Register the profiles and load the chosen one (see ``chosen``), with the Redis example
    database ``db`` (else ``$PCPFUZZ_DB``) when given; returns its name. Raises
    ``UnknownSettings`` or ``BadDatabase``."""
    register()
    name = chosen(option)
    url = db or os.environ.get(DB_ENV)
    if url:
        if name in DATABASE_FREE:
            raise BadDatabase(f"the {name!r} settings profile is database-free; {url} unused")
        settings.register_profile(f"{name}+db", settings(PROFILES[name], database=database(url)))
        name = f"{name}+db"
    settings.load_profile(name)
    return name
