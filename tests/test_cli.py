"""End to end: the installed ``pcpfuzz`` command, run in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
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


# ---- hardening (issue 15): every bad input one line, exit 2, nothing half-written -------------

ENTRY = Path(__file__).resolve().parent.parent / "corpus" / "v5.9-nofix" / "ISO-PCP-8a6c1bf173.json"


def test_fuzz_on_a_zoo_profile_saves_an_entry_that_replays(tmp_path: Path) -> None:
    """Item 1: must_pass names only kernels the trace runs on (the ladder's rule)."""
    result = pcpfuzz(
        "fuzz", "--profile", "v5.11-unforced-disable", "--max-examples", "600", "--json",
        "--corpus", str(tmp_path),
    )  # fmt: skip
    (row,) = json_lines(result.stdout)
    assert row["found"], result.stderr
    replayed = pcpfuzz("replay", row["corpus_entry"])
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_a_truncated_file_at_the_entrys_name_is_reported_not_trusted(tmp_path: Path) -> None:
    """Item 2."""
    first = pcpfuzz("fuzz", "--profile", "v5.9-nofix", "--json", "--corpus", str(tmp_path))
    path = Path(json_lines(first.stdout)[0]["corpus_entry"])
    text = path.read_text()
    path.write_text(text[:40])
    again = pcpfuzz("fuzz", "--profile", "v5.9-nofix", "--json", "--corpus", str(tmp_path))
    (row,) = json_lines(again.stdout)
    assert row["found"] and row["corpus_entry"] is None
    assert f"{path} exists and is not this entry" in again.stderr
    assert path.read_text() == text[:40]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.parametrize("kind", ["symlink-loop", "file", "read-only-profile-dir"])
def test_an_unusable_corpus_is_refused_before_the_campaign(tmp_path: Path, kind: str) -> None:
    """Item 3 (and 7's symlink loop): exit 2 before fuzzing, one line naming the path."""
    corpus = tmp_path / "corpus"
    culprit = f"{corpus}: cannot write there"
    if kind == "symlink-loop":
        corpus.symlink_to(corpus)
    elif kind == "file":
        corpus.write_text("")
        culprit = f"'{corpus}' is a file"
    else:
        (corpus / "v5.9-nofix").mkdir(parents=True)
        (corpus / "v5.9-nofix").chmod(0o555)
        culprit = f"{corpus / 'v5.9-nofix'}: cannot write there: it is read-only"
    result = pcpfuzz("fuzz", "--profile", "v5.9-nofix", "--corpus", str(corpus))
    assert_one_line_error(result, culprit)
    assert result.stdout == ""


def test_an_interrupted_table_run_prints_what_it_found(tmp_path: Path) -> None:
    """Item 4: SIGINT during the second profile; the first's finding is printed and saved."""
    proc = subprocess.Popen(
        [PCPFUZZ, "fuzz", "--profile", "v5.9-nofix", "--profile", "v5.10", "--time", "60",
         "--corpus", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    assert "v5.9-nofix: ISO-PCP found" in proc.stderr.readline()  # the plain progress line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    (entry,) = tmp_path.rglob("*.json")
    assert "v5.9-nofix: ISO-PCP violated: pfn 56" in out and str(entry) in out
    assert "pcpfuzz fuzz: interrupted" in err and "Traceback" not in err


def _entry_with(tmp_path: Path, **changes: object) -> Path:
    data = json.loads(ENTRY.read_text())
    for key, value in changes.items():
        target, _, field = key.partition("__")
        if field:
            data[target][field] = value
        else:
            data[target] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("changes", "culprit"),
    [
        ({"actions": [{"cpu": 0, "do": "start", "op": "alloc_pages", "args": [0]}]},
         "actions[0].args: alloc_pages takes 2 argument(s), got 1"),
        ({"geometry__nr_blocks": 10**9}, "geometry.nr_blocks: 1000000000 is outside 1..64"),
        ({"geometry__max_order": 10**12}, "geometry.max_order"),
        ({"found_by__engine": "quantum"}, "found_by.engine: unknown engine 'quantum'"),
    ],
)  # fmt: skip
def test_a_bad_entry_field_is_named(tmp_path: Path, changes: dict, culprit: str) -> None:
    """Items 5 and 7 (unknown found_by.engine)."""
    path = _entry_with(tmp_path, **changes)
    for command in (("replay", str(path)), ("show", str(path))):
        result = pcpfuzz(*command)
        assert_one_line_error(result, culprit)


def test_deeply_nested_and_oversized_entries_are_refused(tmp_path: Path) -> None:
    """Item 5."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert_one_line_error(pcpfuzz("replay", str(deep)), "nested too deeply")
    big = tmp_path / "big.json"
    big.write_text(" " * (2 << 20))
    assert_one_line_error(pcpfuzz("show", str(big)), "more than the 1048576")


@pytest.mark.parametrize(
    "args",
    [
        ("fuzz", "--time", "nan"),
        ("fuzz", "--time", "inf"),
        ("fuzz", "--time", "0"),
        ("ladder", "--time", "nan"),
        ("crosscheck", "--timeout", "0"),
        ("crosscheck", "--timeout", "-1"),
        ("crosscheck", "--timeout", "nan"),
    ],
)
def test_numbers_are_range_checked(args: tuple[str, ...]) -> None:
    """Item 6."""
    assert_one_line_error(pcpfuzz(*args), args[1])


def test_a_campaign_that_ran_no_example_is_an_error_not_a_pass() -> None:
    """Item 6: --time 1e-9 ends before the first example."""
    result = pcpfuzz("fuzz", "--profile", "v5.10", "--time", "1e-9")
    assert_one_line_error(result, "nothing was tested")


def test_show_svg_into_a_missing_directory(tmp_path: Path) -> None:
    """Item 7."""
    svg = tmp_path / "missing" / "x.svg"
    assert_one_line_error(pcpfuzz("show", str(ENTRY), "--svg", str(svg)), "--svg")
    assert not svg.parent.exists()


def test_crosscheck_workdir_symlink_loop(tmp_path: Path) -> None:
    """Item 7: refused before looking for QEMU."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert_one_line_error(pcpfuzz("crosscheck", "--workdir", str(loop)), "--workdir")


def test_update_traces_on_a_read_only_entry(tmp_path: Path) -> None:
    """Item 7: a one-line error, the file untouched."""
    data = json.loads(ENTRY.read_text())
    data["trace"] = ["old wording"]
    path = tmp_path / "entry.json"
    path.write_text(json.dumps(data))
    path.chmod(0o444)
    result = pcpfuzz("replay", "--update-traces", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"not updated cannot write {path}: it is read-only"
    assert json.loads(path.read_text())["trace"] == ["old wording"]


@pytest.mark.parametrize("where", ["empty", "outside"])
def test_replay_with_nothing_to_replay(tmp_path: Path, where: str) -> None:
    """Item 7: an empty directory, or no corpus/ here, is exit 2, not '0 entries: 0 ok'."""
    if where == "empty":
        result = pcpfuzz("replay", str(tmp_path))
        assert_one_line_error(result, "nothing replayed")
    else:
        assert_one_line_error(pcpfuzz("replay", cwd=tmp_path), "no corpus/ directory here")


def test_help_lists_engines_profiles_and_budgets() -> None:
    """Item 9."""
    text = " ".join(pcpfuzz("fuzz", "--help").stdout.split())
    assert "[random|pct|hypothesis]" in text
    assert "'pcpfuzz profiles' lists them" in text
    assert "whichever comes first" in text


def test_piped_fuzz_reports_progress_on_stderr() -> None:
    """Item 9: off a terminal, one plain line per profile (and one every 10 s)."""
    result = pcpfuzz("fuzz", "--profile", "v5.10", "--max-examples", "5")
    assert (
        result.stderr.strip()
        == "pcpfuzz fuzz: v5.10: nothing found in 5 examples, "
        + (result.stderr.strip().rsplit(", ", 1)[1])
    )


def _column(out: str, index: int) -> str:
    """The text of table column ``index`` of ``out``, its wrapped lines joined."""
    cells = [line.split("│")[index].strip() for line in out.splitlines() if line.count("│") > index]
    return "".join(cells)


def test_80_columns_wrap_instead_of_cutting() -> None:
    """Item 10."""
    env = {**os.environ, "COLUMNS": "80"}
    profiles = subprocess.run([PCPFUZZ, "profiles"], capture_output=True, text=True, env=env)
    assert "…" not in profiles.stdout
    assert "offline_retry_drain=False" in profiles.stdout
    show = subprocess.run([PCPFUZZ, "show", str(ENTRY)], capture_output=True, text=True, env=env)
    assert "…" not in show.stdout
    assert "free_unref_page_prepare(pfn" in _column(show.stdout, 4)
    assert "set_migratetype_isolate(pb" in _column(show.stdout, 3)
    assert all(len(line) <= 80 for line in show.stdout.splitlines())


def test_the_svg_uses_system_fonts(tmp_path: Path) -> None:
    """Item 10: no web fonts, so it renders offline."""
    svg = tmp_path / "x.svg"
    assert pcpfuzz("show", str(ENTRY), "--svg", str(svg)).returncode == 0
    text = svg.read_text()
    assert (
        "@font-face" not in text
        and "cdnjs" not in text
        and "https://" not in text.split("-->", 1)[1]
    )
    assert "monospace" in text
