"""Every engine, imported so that it registers itself, and the default one."""

from importlib import import_module

from pcpfuzz.engines.base import ENGINES, EngineFn

ENGINE_MODULES = ("random_walk", "pct", "hypothesis_engine")
DEFAULT_ENGINE = "random"
ENGINE_NAMES = ("random", "pct", "hypothesis")
"""The names the engine modules register, known without importing them (and Hypothesis)."""


def load_engines() -> dict[str, EngineFn]:
    """Import every engine module and return the registry, by name."""
    for name in ENGINE_MODULES:
        import_module(f"pcpfuzz.engines.{name}")
    return ENGINES
