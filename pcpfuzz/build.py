"""Which build runs, the mypyc-compiled one or pure Python, and why (issue 17).

A compiled build (``PCPFUZZ_COMPILE=1 pip install .``, see ``setup.py``) leaves
``_compiled.json`` beside this file: each compiled module and the SHA-256 of its source. When
the package is imported every hash is checked, so that an edited source (an editable install
changed after its build) is never shadowed by its stale binary: on a mismatch, a missing binary
or ``PCPFUZZ_BUILD=pure`` the whole package loads from source (compiled modules call each other
directly, so a build is all or nothing), with a warning when that was not asked for.
``PCPFUZZ_BUILD=compiled`` makes anything but the compiled build an import error naming the
module, so that a run meant to test the compiled build cannot test the other one.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import attrs

PACKAGE = Path(__file__).resolve().parent
MANIFEST = PACKAGE / "_compiled.json"
BUILD_ENV = "PCPFUZZ_BUILD"
CHOICES = ("auto", "pure", "compiled")

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:

    def mypyc_attr(*names: str, **flags: Any) -> Any:
        """mypyc's class options (``mypy_extensions.mypyc_attr``): mypyc reads them when it
        compiles; at run time they do nothing, so the pure build needs no mypy."""
        return lambda cls: cls


@attrs.frozen
class Build:
    """The build this process runs, why, and the modules a compiled build covers."""

    compiled: bool
    why: str
    modules: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line, as ``pcpfuzz --version`` prints it."""
        return f"{'compiled (mypyc)' if self.compiled else 'pure Python'}: {self.why}"


class SourceFinder(importlib.abc.MetaPathFinder):
    """Loads ``modules`` from their ``.py`` sources, ahead of their compiled binaries."""

    def __init__(self, modules: Sequence[str]) -> None:
        self.modules = frozenset(modules)

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in self.modules:
            return None
        return importlib.util.spec_from_file_location(name, source_path(name))


def source_path(module: str) -> Path:
    """The ``.py`` file of ``pcpfuzz`` module ``module``."""
    return PACKAGE.parent.joinpath(*module.split(".")).with_suffix(".py")


def has_binary(src: Path) -> bool:
    """Whether a compiled extension is beside source file ``src``."""
    return any(
        src.with_name(src.stem + suffix).exists()
        for suffix in importlib.machinery.EXTENSION_SUFFIXES
    )


def binaries() -> set[str]:
    """The modules with a compiled binary beside their source."""
    return {
        ".".join(src.relative_to(PACKAGE.parent).with_suffix("").parts)
        for src in PACKAGE.rglob("*.py")
        if has_binary(src)
    }


def mismatch(manifest: dict[str, str], built: set[str]) -> str | None:
    """Why the compiled build cannot run (a module's source edited or gone, its binary missing,
    or a binary that the build did not make), or None."""
    for module, digest in sorted(manifest.items()):
        src = source_path(module)
        if not src.exists() or hashlib.sha256(src.read_bytes()).hexdigest() != digest:
            return f"{src.relative_to(PACKAGE.parent)} changed since the compiled build"
        if module not in built:
            return f"the compiled {module} is missing"
    for module in sorted(built - manifest.keys()):
        return f"{module} has a binary that the compiled build did not make"
    return None


def select(mode: str, manifest: dict[str, str], built: set[str]) -> Build:
    """The build to run under ``PCPFUZZ_BUILD=mode``, given the compiled build's ``manifest``
    (empty: none) and the modules ``built`` with a binary: compiled when a compiled build is
    installed, current and not refused; else pure Python, every module with a binary loaded
    from source."""
    if mode not in CHOICES:
        raise ImportError(f"pcpfuzz: {BUILD_ENV}={mode!r}: expected one of {', '.join(CHOICES)}")
    modules = tuple(sorted(built | manifest.keys()))
    why = None
    if not manifest:
        build = Build(False, "installed without PCPFUZZ_COMPILE=1", modules)
        if built:
            why = "compiled binaries without a compiled build's manifest"
    elif mode == "pure":
        build = Build(False, f"{BUILD_ENV}=pure (a compiled build is installed)", modules)
    elif (why := mismatch(manifest, built)) is None:
        return Build(True, f"{len(manifest)} modules compiled", modules)
    if why is not None:
        build = Build(False, f"{why}; rebuild with PCPFUZZ_COMPILE=1 pip install", modules)
        if mode == "auto":
            print(f"pcpfuzz: warning: {why}: running pure Python", file=sys.stderr)
    if mode == "compiled":
        raise ImportError(f"pcpfuzz: {BUILD_ENV}=compiled, but {build.why}")
    return build


def activate() -> Build:
    """Select the build for this process (``PCPFUZZ_BUILD``, default auto) and, when it is pure
    Python over an installed compiled build, make its modules load from source."""
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    build = select(os.environ.get(BUILD_ENV) or "auto", manifest, binaries())
    if not build.compiled and build.modules:
        sys.meta_path.insert(0, SourceFinder(build.modules))
    return build


def loaded_from_source(build: Build) -> list[str]:
    """The modules of ``build`` that were imported from source although it is compiled."""
    return [
        name
        for name in build.modules
        if name in sys.modules
        and not isinstance(sys.modules[name].__loader__, importlib.machinery.ExtensionFileLoader)
    ]
