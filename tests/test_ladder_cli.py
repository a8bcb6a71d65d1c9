"""``pcpfuzz ladder`` end to end: the installed command, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pcpfuzz.corpus import load_entry
from pcpfuzz.ladder import adds, expected
from pcpfuzz.profiles import LADDER, MODERN, ZOO

PCPFUZZ = shutil.which("pcpfuzz")
pytestmark = pytest.mark.skipif(PCPFUZZ is None, reason="the pcpfuzz command is not installed")
ORDER = [p.name for p in (*LADDER, *ZOO, *MODERN)]
KEYS = {
    "profile",
    "kind",
    "adds",
    "expected",
    "examples",
    "model_steps",
    "seconds",
    "invariant",
    "shrunk_length",
    "original_length",
    "message",
    "corpus_entry",
    "found",
    "ok",
}


def pcpfuzz(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PCPFUZZ, "ladder", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    corpus = tmp_path_factory.mktemp("corpus")
    args = ("--engine", "random", "--max-examples", "20", "--time", "120", "--json")
    return pcpfuzz(*args, "--corpus", str(corpus)), corpus


def rows(result: subprocess.CompletedProcess[str]) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_one_json_row_per_rung_and_zoo_profile_in_ladder_order(run) -> None:
    result, _corpus = run
    got = rows(result)
    assert [r["profile"] for r in got] == ORDER
    by_name = {p.name: p for p in (*LADDER, *ZOO, *MODERN)}
    kinds = {**{p.name: "zoo" for p in ZOO}, **{p.name: "modern" for p in MODERN}}
    for r in got:
        assert set(r) == KEYS
        assert r["kind"] == kinds.get(r["profile"], "rung")
        assert r["adds"] == adds(by_name[r["profile"]])
        assert r["expected"] == list(expected(r["profile"]))
        assert r["examples"] <= 20
        assert r["found"] == (r["invariant"] is not None)
        if r["kind"] == "modern":
            assert r["ok"] == (not r["found"] or r["invariant"] in r["expected"])
        else:
            assert r["ok"] == (r["invariant"] in r["expected"] if r["expected"] else not r["found"])
        assert (r["shrunk_length"] is None) == (not r["found"])


def test_exit_status_says_whether_every_row_is_as_expected(run) -> None:
    result, _corpus = run
    assert result.returncode == (0 if all(r["ok"] for r in rows(result)) else 1)


def test_each_finding_is_saved_with_its_fixed_kernel(run) -> None:
    result, corpus = run
    found = [r for r in rows(result) if r["found"]]
    assert found, "20 examples find at least the quick zoo bugs"
    for r in found:
        entry = load_entry(Path(r["corpus_entry"]))
        assert Path(r["corpus_entry"]).parent == corpus / r["profile"]
        assert entry.expect.invariant == r["invariant"]
        assert len(entry.actions) == r["shrunk_length"]
        assert set(entry.must_pass) <= {"v5.10", "v5.11"}


def test_the_table_names_every_profile_and_what_it_adds() -> None:
    result = pcpfuzz("--engine", "random", "--max-examples", "1", "--time", "120")
    assert result.returncode in (0, 1)
    out = result.stdout
    assert "what it adds" in out and "shrunk length" in out
    for name in ORDER:
        assert name in out
    assert "compute_once_per_zone=True" in out and "bulk_clamp=False" in out


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (("--engine", "nope"), "'nope' is not one of"),
        (("--time", "0"), "--time"),
        (("--max-examples", "0"), "--max-examples"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], culprit: str) -> None:
    result = pcpfuzz(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and culprit in lines[0], result.stderr
    assert "Traceback" not in result.stderr
