"""End to end: the installed ``pcpfuzz`` command, run in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pcpfuzz.invariants import INVARIANT_NAMES
from pcpfuzz.profiles import CAMPAIGN, PROFILES

PCPFUZZ = str(Path(sys.executable).with_name("pcpfuzz"))
"""The console script installed beside this interpreter (the one ``pip install`` made)."""
FUZZ_KEYS = {
    "profile",
    "engine",
    "seed",
    "found",
    "invariant",
    "actions",
    "seconds",
    "examples",
    "model_steps",
    "corpus_entry",
}


def pcpfuzz(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PCPFUZZ, *args], capture_output=True, text=True, timeout=300, cwd=cwd, check=False
    )


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def assert_one_line_error(result: subprocess.CompletedProcess[str], culprit: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert culprit in lines[0]
    assert "Traceback" not in result.stderr


def test_profiles_json_lists_every_profile_with_its_switches() -> None:
    result = pcpfuzz("profiles", "--json")
    assert result.returncode == 0
    rows = json_lines(result.stdout)
    assert [r["name"] for r in rows] == list(PROFILES)
    for r in rows:
        profile = PROFILES[r.pop("name")]
        assert r.pop("description") == profile.description
        assert r == profile.switches()


def test_profiles_table_names_every_profile() -> None:
    result = pcpfuzz("profiles")
    assert result.returncode == 0
    for name in PROFILES:
        assert name in result.stdout


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """One fuzz run on v5.9-nofix that finds the race and saves it to a fresh corpus."""
    corpus = tmp_path_factory.mktemp("corpus")
    result = pcpfuzz(
        "fuzz", "--profile", "v5.9-nofix", "--seed", "1", "--time", "60", "--json",
        "--corpus", str(corpus),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    (row,) = json_lines(result.stdout)
    return row, corpus


def test_fuzz_finds_the_race_on_v59_and_saves_it(found: tuple[dict, Path]) -> None:
    row, corpus = found
    assert set(row) >= FUZZ_KEYS
    assert row["profile"] == "v5.9-nofix" and row["engine"] == "random" and row["seed"] == 1
    assert row["found"] is True
    assert row["invariant"] in {"ISO-PCP", "ISO-NO-ALLOC", "OFFLINE-TERM"}
    assert 1 <= row["actions"] <= 20
    assert row["examples"] >= 1 and row["model_steps"] >= row["actions"]
    entry = Path(row["corpus_entry"])
    assert entry.parent == corpus / "v5.9-nofix" and entry.name.startswith(row["invariant"])


def test_replay_of_the_saved_entry_passes_and_a_broken_copy_diverges(
    found: tuple[dict, Path], tmp_path: Path
) -> None:
    row, corpus = found
    assert pcpfuzz("replay", str(corpus)).returncode == 0
    data = json.loads(Path(row["corpus_entry"]).read_text())
    data["profile"] = "v5.11"
    data["must_pass"] = []
    broken = tmp_path / "diverges.json"
    broken.write_text(json.dumps(data))
    result = pcpfuzz("replay", str(broken))
    assert result.returncode == 1
    assert "diverges.json" in result.stdout + result.stderr


def test_show_renders_the_entry_as_log_and_lanes_and_svg(
    found: tuple[dict, Path], tmp_path: Path
) -> None:
    row, _ = found
    svg = tmp_path / "trace.svg"
    result = pcpfuzz("show", row["corpus_entry"], "--svg", str(svg))
    assert result.returncode == 0, result.stderr
    assert "kernel-style log" in result.stdout and "swim lanes" in result.stdout
    assert "free_unref_page_prepare" in result.stdout
    assert f"{row['invariant']} violated" in result.stdout
    assert svg.read_text().lstrip().startswith("<svg")


def test_fuzz_finds_nothing_on_v511_within_a_small_budget() -> None:
    result = pcpfuzz("fuzz", "--profile", "v5.11", "--max-examples", "30", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    (row,) = json_lines(result.stdout)
    assert row["found"] is False and row["invariant"] is None and row["actions"] is None
    assert row["examples"] == 30 and row["corpus_entry"] is None


def test_default_campaign_covers_every_version_profile() -> None:
    result = pcpfuzz("fuzz", "--time", "2", "--json")
    rows = json_lines(result.stdout)
    assert [r["profile"] for r in rows] == [p.name for p in CAMPAIGN]
    assert result.returncode == (1 if any(r["found"] for r in rows) else 0)
    for r in rows:
        assert r["invariant"] is None or r["invariant"] in INVARIANT_NAMES


def test_fuzz_table_on_a_non_terminal_is_plain() -> None:
    result = pcpfuzz("fuzz", "--profile", "v5.10", "--max-examples", "5")
    assert result.returncode == 0
    assert "profile" in result.stdout and "v5.10" in result.stdout
    assert "\x1b[" not in result.stdout


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (("fuzz", "--profile", "v9.99"), "v9.99"),
        (("fuzz", "--engine", "quantum"), "quantum"),
        (("fuzz", "--max-examples", "0"), "--max-examples"),
        (("fuzz", "--time", "soon"), "--time"),
        (("show", "no-such-entry.json"), "no-such-entry.json"),
        (("frobnicate",), "frobnicate"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], culprit: str) -> None:
    assert_one_line_error(pcpfuzz(*args), culprit)


def test_show_of_a_malformed_entry_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_one_line_error(pcpfuzz("show", str(bad)), "bad.json")
