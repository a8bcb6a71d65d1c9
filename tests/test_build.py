"""The build check (``pcpfuzz.build``): which build runs, and an out-of-date compiled build is
never run. These run on both builds; CI runs the suite once on each."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pcpfuzz
from pcpfuzz.build import BUILD_ENV, loaded_from_source, select, source_path

PCPFUZZ = str(Path(sys.executable).with_name("pcpfuzz"))


def digest(module: str) -> str:
    return hashlib.sha256(source_path(module).read_bytes()).hexdigest()


CURRENT = {m: digest(m) for m in ("pcpfuzz.state", "pcpfuzz.system")}
"""A compiled build of two modules, current (their sources as they are)."""


def test_a_current_compiled_build_runs() -> None:
    build = select("auto", CURRENT, set(CURRENT))
    assert build.compiled and build.modules == ("pcpfuzz.state", "pcpfuzz.system")
    assert build.describe() == "compiled (mypyc): 2 modules compiled"


def test_no_compiled_build_is_pure() -> None:
    build = select("auto", {}, set())
    assert not build.compiled and build.modules == ()
    assert build.describe() == "pure Python: installed without PCPFUZZ_COMPILE=1"


def test_an_edited_source_falls_back_to_pure_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    build = select("auto", {**CURRENT, "pcpfuzz.system": "0" * 64}, set(CURRENT))
    assert not build.compiled and build.modules == ("pcpfuzz.state", "pcpfuzz.system")
    assert build.why.startswith("pcpfuzz/system.py changed since the compiled build")
    assert "pcpfuzz/system.py changed since the compiled build" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("built", "why"),
    [
        ({"pcpfuzz.state"}, "the compiled pcpfuzz.system is missing"),
        ({*CURRENT, "pcpfuzz.ops"}, "pcpfuzz.ops has a binary that the compiled build did not"),
    ],
)
def test_binaries_that_do_not_match_the_build_fall_back_to_pure(built: set[str], why: str) -> None:
    build = select("auto", CURRENT, built)
    assert not build.compiled and build.why.startswith(why)
    assert set(build.modules) == built | set(CURRENT)  # all of them load from source


def test_binaries_without_a_manifest_are_not_run() -> None:
    build = select("auto", {}, {"pcpfuzz.system"})
    assert not build.compiled and build.modules == ("pcpfuzz.system",)
    assert build.why.startswith("compiled binaries without a compiled build's manifest")


def test_requiring_the_compiled_build_fails_naming_the_culprit() -> None:
    with pytest.raises(ImportError, match="PCPFUZZ_COMPILE=1"):
        select("compiled", {}, set())
    with pytest.raises(ImportError, match="pcpfuzz/system.py changed"):
        select("compiled", {**CURRENT, "pcpfuzz.system": "0" * 64}, set(CURRENT))


def test_refusing_the_compiled_build() -> None:
    build = select("pure", CURRENT, set(CURRENT))
    assert not build.compiled and build.why.startswith("PCPFUZZ_BUILD=pure")
    with pytest.raises(ImportError, match="expected one of auto, pure, compiled"):
        select("fast", {}, set())


def run(*code: str, build: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, BUILD_ENV: build}
    return subprocess.run(
        [sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, env=env
    )


def test_pure_runs_every_module_from_source() -> None:
    done = run(
        "import pcpfuzz, pcpfuzz.system, pcpfuzz.mm.pcp, pcpfuzz.engines.choice as c",
        "print(pcpfuzz.BUILD.compiled, pcpfuzz.system.__file__, c.__file__)",
        build="pure",
    )
    assert done.returncode == 0, done.stderr
    compiled, *files = done.stdout.split()
    assert compiled == "False" and all(f.endswith(".py") for f in files)


def test_the_compiled_build_runs_every_module_compiled() -> None:
    if not pcpfuzz.BUILD.compiled:
        pytest.skip(f"this run tests the pure build ({pcpfuzz.BUILD.describe()})")
    for module in pcpfuzz.BUILD.modules:
        __import__(module)
    assert loaded_from_source(pcpfuzz.BUILD) == []


def test_version_names_the_build() -> None:
    done = subprocess.run([PCPFUZZ, "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip() == f"pcpfuzz {pcpfuzz.__version__}, {pcpfuzz.BUILD.describe()}"


def test_the_benchmark_runs_both_builds(tmp_path: Path) -> None:
    if not pcpfuzz.BUILD.compiled:
        pytest.skip("needs a compiled build beside the pure one")
    out = tmp_path / "compiled.json"
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "compiled.py"
    argv = [sys.executable, str(script), "--seconds", "0.2", "--repeat", "1", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["builds"]["pure"].startswith("pure Python: PCPFUZZ_BUILD=pure")
    assert data["builds"]["compiled"].startswith("compiled (mypyc)")
    assert [r["run"] for r in data["rows"]] == [
        "random v5.11",
        "pct v5.11",
        "walk v5.11",
        "walk v6.1",
        "walk v6.12",
    ]
    assert all(r["pure"] > 0 and r["compiled"] > 0 for r in data["rows"])
