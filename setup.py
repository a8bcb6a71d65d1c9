"""Build hook: the optional mypyc-compiled build of the model, the checker and the chooser.

``pip install .`` (or ``-e .``) builds the pure-Python package, the reference. With
``PCPFUZZ_COMPILE=1`` the modules in ``COMPILED`` are compiled with mypyc (fetched into the
build environment) when a C compiler is found; without one the build warns and stays pure.
A compiled build writes ``pcpfuzz/_compiled.json``, each compiled module's source hash, which
``pcpfuzz.build`` checks at import (an edited source is never shadowed by a stale binary).
A mypyc or C error fails the build naming the module.
"""

import hashlib
import json
import os
import shlex
import shutil
import sys
import sysconfig
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
COMPILED = (
    "pcpfuzz/state.py",
    "pcpfuzz/system.py",
    "pcpfuzz/incremental.py",
    "pcpfuzz/invariants.py",
    "pcpfuzz/invariants612.py",
    "pcpfuzz/engines/choice.py",
    "pcpfuzz/engines/steer.py",
    *sorted(
        str(p.relative_to(ROOT))
        for pkg in ("mm", "mm6", "mm612")
        for p in (ROOT / "pcpfuzz" / pkg).glob("*.py")
        if p.name != "__init__.py"
    ),
)
"""The hot modules: every kernel model, the state, ``System``, the checks, the incremental
checker and the choosers (``steer``'s subclasses ``choice``'s, and an interpreted class cannot
inherit from a compiled one). ``System`` allows interpreted subclasses (the shrinker's
``Replay``); the checker keeps its memo on the system (``System.check_memo``). Not the modules
that only set a campaign up."""
MANIFEST = "pcpfuzz/_compiled.json"
MYPY = "mypy>=2.4"
"""The mypy (and mypyc) the compiled build was made and tested with."""
BUILDS = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}
"""The setuptools commands that build extensions (the others only write metadata)."""


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def c_compiler() -> str | None:
    """The C compiler the build would use (``$CC`` or Python's), if it is on the PATH."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shutil.which(shlex.split(cc)[0])


class BuildManifest(build_ext):
    """``build_ext`` that records each compiled module's source hash beside the extensions."""

    def run(self) -> None:
        super().run()
        manifest = {module_name(p): source_hash(ROOT / p) for p in COMPILED}
        package = Path(self.get_ext_fullpath("pcpfuzz.state")).parent
        (package / Path(MANIFEST).name).write_text(
            json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        )


def remove_inplace_build() -> None:
    """Remove the binaries an earlier in-place compiled build (``-e``) left in the tree: a pure
    build is pure whatever was built before, a compiled one leaves no binary it did not make."""
    manifest = ROOT / MANIFEST
    if not manifest.exists():
        return
    stems = [ROOT / "pcpfuzz__mypyc"]
    stems += [ROOT / module.replace(".", "/") for module in json.loads(manifest.read_text())]
    for stem in stems:
        for suffix in EXTENSION_SUFFIXES:
            stem.with_name(stem.name + suffix).unlink(missing_ok=True)
    manifest.unlink()
    print("pcpfuzz: removed the in-place compiled build", file=sys.stderr)


def compiled_build() -> dict:
    """``setup()`` arguments for the compiled build; empty (pure) when not asked for or no C
    compiler is found."""
    remove_inplace_build()
    if os.environ.get("PCPFUZZ_COMPILE", "0") in ("", "0"):
        return {}
    if c_compiler() is None:
        print("pcpfuzz: PCPFUZZ_COMPILE=1 but no C compiler: building pure Python", file=sys.stderr)
        return {}
    try:
        from mypyc.build import mypycify
    except ImportError:  # setuptools asks for build requirements first, then builds
        return {"setup_requires": [MYPY]}
    if not BUILDS.intersection(sys.argv):
        return {}  # metadata only: no need to compile
    os.chdir(ROOT)  # mypyc names modules by their paths
    extensions = mypycify(list(COMPILED), opt_level="3", group_name="pcpfuzz")
    return {"ext_modules": extensions, "cmdclass": {"build_ext": BuildManifest}}


setup(**compiled_build())
