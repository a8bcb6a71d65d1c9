"""The README against a fresh run: the commands it quotes, run (with the deterministic parts of
their output compared), so that the README fails this test when it drifts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pcpfuzz.crosscheck.tools import KERNELS, cache_dir
from pcpfuzz.profiles import CAMPAIGN

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PCPFUZZ = str(Path(sys.executable).with_name("pcpfuzz"))


def blocks(section: str) -> list[str]:
    """The fenced code blocks of the README section whose heading is ``section``."""
    start = README.index(f"\n## {section}\n")
    end = README.find("\n## ", start + 1)
    return re.findall(r"```\n(.*?)```\n", README[start:end], re.S)


def pcpfuzz(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [PCPFUZZ, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )


def table_rows(text: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def test_the_fresh_machine_commands_are_what_ci_and_the_default_campaign_run() -> None:
    install_fuzz, _, install_test = blocks("Two commands for a fresh machine")
    assert install_fuzz.strip().endswith("pip install -e . && pcpfuzz fuzz")
    ci_pytest = next(
        line for line in (ROOT / ".ci/run").read_text().splitlines() if "pytest" in line
    )
    assert install_test.strip().endswith(f"&& {ci_pytest.strip()}")


def test_the_quoted_default_campaign_matches_a_run() -> None:
    """Each row that found something (deterministic for the seed) and its message line are
    compared with a real run of that profile; the other rows (their counts depend on the
    machine) must name the default campaign's profiles, found nothing, each 15 s."""
    _, quoted, _ = blocks("Two commands for a fresh machine")
    rows = table_rows(quoted)
    assert [r[0] for r in rows] == [p.name for p in CAMPAIGN]
    for row in rows:
        if row[3] == "no":
            assert row[4:6] == ["-", "-"] and row[6] == "15.0s"
            continue
        result = pcpfuzz("fuzz", "--profile", row[0], "--json")
        (run,) = [json.loads(line) for line in result.stdout.splitlines()]
        found = [str(run["examples"]), str(run["model_steps"]), "yes", run["invariant"]]
        assert row[1:5] == found and row[5] == str(run["actions"])
        assert f"{row[0]}: {run['invariant']} violated: {run['message']}" in quoted


def test_the_walkthrough_is_the_entry_fuzz_saves_and_show_prints_it(tmp_path: Path) -> None:
    (quoted,) = blocks("A counterexample, as `pcpfuzz show` renders it")
    name = quoted.splitlines()[0]
    saved = pcpfuzz("fuzz", "--profile", "v5.9-nofix", "--json", "--corpus", str(tmp_path))
    (row,) = [json.loads(line) for line in saved.stdout.splitlines()]
    assert Path(row["corpus_entry"]).relative_to(tmp_path) == Path(name).relative_to("corpus")
    assert Path(row["corpus_entry"]).read_text() == (ROOT / name).read_text()
    assert f"`pcpfuzz show {name}`" in README
    width = len(next(line for line in quoted.splitlines() if line.startswith("╭")))
    assert pcpfuzz("show", name, columns=width).stdout == quoted


@pytest.mark.parametrize("kernel", KERNELS)
def test_the_kernel_packages_named_are_the_ones_set_up(kernel: str) -> None:
    recorded = cache_dir() / kernel / "package"
    if not recorded.exists():
        pytest.skip("scripts/crosscheck-setup.sh has not run here")
    package, version = recorded.read_text().split()
    assert f"(`{package}` {version}" in README
