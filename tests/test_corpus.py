"""The corpus format, saving, replay and ``pcpfuzz replay``."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner
from test_render import RACE

from pcpfuzz import replay as replay_module
from pcpfuzz.actions import RunWork, Start, Step
from pcpfuzz.cli import main
from pcpfuzz.corpus import (
    CORPUS_ENV,
    FORMAT_VERSION,
    Expect,
    FoundBy,
    MalformedEntry,
    dumps,
    load_entry,
    make_entry,
    parse_entry,
    save_entry,
    save_failure,
    save_from_env,
)
from pcpfuzz.engines.base import Failure
from pcpfuzz.geometry import Geometry
from pcpfuzz.ladder import kernels_to_pass, must_pass
from pcpfuzz.profiles import LADDER, ZOO, get_profile
from pcpfuzz.replay import replay_entry
from pcpfuzz.trace import END, execute
from pcpfuzz.violation import Violation

NOFIX = get_profile("v5.9-nofix")


def race_failure(actions=RACE) -> Failure:
    out = execute(NOFIX, Geometry(), actions)
    assert out.violation is not None
    return Failure(NOFIX, Geometry(), tuple(actions), out.violation, out.at)


@pytest.fixture(scope="module")
def entry():
    return make_entry(NOFIX, Geometry(), RACE, FoundBy("random", 7))


def raw(entry) -> dict:
    return json.loads(dumps(entry))


def write(tmp_path: Path, name: str, content) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# ---- format --------------------------------------------------------------------------------------


def test_round_trip(entry):
    text = dumps(entry)
    assert parse_entry(text) == entry
    assert dumps(parse_entry(text)) == text


def test_the_entry_records_the_outcome_and_the_fix(entry):
    assert entry.format == FORMAT_VERSION
    assert entry.expect == Expect("ISO-PCP", 7, execute(NOFIX, Geometry(), RACE).violation.message)
    assert entry.must_pass == ("v5.10",)
    data = raw(entry)
    assert data["actions"][2] == {"cpu": 0, "do": "start", "op": "free_pages", "args": [56]}
    assert data["actions"][1] == {"cpu": 0, "do": "step"}
    assert data["found_by"] == {"engine": "random", "seed": 7}
    assert data["trace"][-1].strip().startswith("ISO-PCP violated")


def test_a_passing_entry_says_passes():
    e = make_entry(get_profile("v5.11"), Geometry(), RACE, FoundBy("random"))
    assert e.expect is None and e.must_pass == ()
    assert raw(e)["expect"] == "passes"
    assert e.file_name().startswith("passes-")
    assert replay_entry(e).ok


def test_bug_profiles_must_pass_where_fixed():
    assert must_pass(get_profile("v5.9-nofix")) == ("v5.10",)
    assert must_pass(get_profile("v5.8-nobulkclamp")) == ("v5.10",)
    assert must_pass(get_profile("v5.11-unforced-disable")) == ("v5.11",)
    assert all(must_pass(p) for p in ZOO)
    assert not any(must_pass(p) for p in LADDER)


def test_must_pass_leaves_out_a_fixed_kernel_the_actions_cannot_run_on():
    """Item 1: get_hwpoison_page exists on v5.11 only, so a zoo trace using it cannot run on a
    kernel without it; make_entry (fuzz --corpus) and the ladder share kernels_to_pass."""
    unforced = get_profile("v5.11-unforced-disable")
    runs = (Start(0, "alloc_pages", (0, 1)), Step(0))
    assert kernels_to_pass(unforced, Geometry(), runs) == ("v5.11",)
    nofix = (Start(0, "alloc_pages", (0, 1)), Step(0), Start(0, "get_hwpoison_page", ()))
    assert kernels_to_pass(get_profile("v5.8-nobulkclamp"), Geometry(), nofix) == ()
    e = make_entry(get_profile("v5.8-nobulkclamp"), Geometry(), runs, FoundBy("random"))
    assert e.must_pass == ("v5.10",) and replay_entry(e).ok


def test_the_diff_shows_one_action_a_line(entry):
    lines = dumps(entry).splitlines()
    assert '    {"cpu": 0, "do": "step"},' in lines
    assert all(len(line) <= 100 for line in lines if '"trace"' not in line and "#" not in line)


# ---- saving --------------------------------------------------------------------------------------


def test_saving_the_same_failure_twice_gives_one_file(tmp_path):
    first = save_failure(race_failure(), tmp_path, FoundBy("random", 1))
    again = save_failure(race_failure(), tmp_path, {"engine": "pct", "seed": 2})
    assert first == again
    assert first.parent == tmp_path / "v5.9-nofix"
    assert first.name.startswith("ISO-PCP-") and first.suffix == ".json"
    assert list(tmp_path.rglob("*.json")) == [first]
    assert load_entry(first).found_by == FoundBy("random", 1)
    other = save_failure(race_failure(RACE[:-1]), tmp_path, FoundBy("random", 1))
    assert other != first and other.name.startswith("OFFLINE-TERM-")


def test_saving_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(CORPUS_ENV, raising=False)
    assert save_from_env(race_failure(), FoundBy("hypothesis")) is None
    monkeypatch.setenv(CORPUS_ENV, str(tmp_path))
    path = save_from_env(race_failure(), FoundBy("hypothesis"))
    assert path is not None and path.parent.parent == tmp_path and path.exists()


def test_saving_refuses_a_failure_that_does_not_reproduce(tmp_path):
    f = attrs.evolve(race_failure(), violation=Violation("CONSERVE", "made up"))
    with pytest.raises(ValueError, match="does not reproduce"):
        save_failure(f, tmp_path, FoundBy("random", 1))
    assert not list(tmp_path.rglob("*.json"))


# ---- malformed input -----------------------------------------------------------------------------


def _with(entry, **changes) -> str:
    data = raw(entry)
    data.update(changes)
    return json.dumps(data)


def _action(entry, i, **changes) -> str:
    data = raw(entry)
    data["actions"][i] = {**data["actions"][i], **changes}
    return json.dumps(data)


MALFORMED = {
    "bad-json": (lambda e: dumps(e)[:-3], "bad JSON"),
    "unknown-field": (lambda e: _with(e, comment="x"), "entry: unknown field(s) comment"),
    "unknown-action-field": (lambda e: _action(e, 1, pfn=3), "actions[1]: unknown field(s) pfn"),
    "unknown-profile": (lambda e: _with(e, profile="v9.9"), "profile: unknown profile 'v9.9'"),
    "unknown-must-pass": (
        lambda e: _with(e, must_pass=["v5.10", "v4"]),
        "must_pass[1]: unknown profile 'v4'",
    ),
    "unknown-op": (lambda e: _action(e, 2, op="foo"), "actions[2].op: unknown operation 'foo'"),
    "unknown-kind": (lambda e: _action(e, 1, do="jump"), "actions[1].do: unknown action kind"),
    "wrong-version": (
        lambda e: _with(e, format=FORMAT_VERSION + 1),
        f"format: version {FORMAT_VERSION + 1} is not supported",
    ),
    "missing-field": (
        lambda e: json.dumps({k: v for k, v in raw(e).items() if k != "found_by"}),
        "found_by: required field missing",
    ),
    "bad-type": (lambda e: _action(e, 0, cpu="0"), "actions[0].cpu: expected"),
    "bad-geometry": (
        lambda e: _with(e, geometry={**raw(e)["geometry"], "block_pages": 6}),
        "geometry: block_pages 6 is not a multiple",
    ),
    "unknown-invariant": (
        lambda e: _with(e, expect={"invariant": "NOPE", "at": 1, "message": ""}),
        "expect.invariant: unknown invariant 'NOPE'",
    ),
    "at-out-of-range": (
        lambda e: _with(e, expect={**raw(e)["expect"], "at": 99}),
        "expect.at: 99 is not an action index",
    ),
    "bad-expect": (lambda e: _with(e, expect="fails"), 'expect: expected "passes"'),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_entries_get_a_one_line_reason(entry, kind):
    make, reason = MALFORMED[kind]
    with pytest.raises(MalformedEntry) as info:
        parse_entry(make(entry))
    assert str(info.value).startswith(reason)
    assert "\n" not in str(info.value)


def test_an_action_not_enabled_is_malformed_with_its_index(entry):
    bad = attrs.evolve(entry, actions=(*entry.actions[:3], RunWork(1), *entry.actions[3:]))
    with pytest.raises(
        MalformedEntry, match=r"^x.json: actions\[3\]: not enabled: CPU1 drain work"
    ):
        replay_entry(bad, Path("x.json"))


def test_load_names_the_file(tmp_path):
    path = write(tmp_path, "broken.json", "{")
    with pytest.raises(MalformedEntry, match=f"^{path}: bad JSON"):
        load_entry(path)


# ---- replay --------------------------------------------------------------------------------------


def test_replay_reaches_the_recorded_outcome_and_the_fix_holds(entry):
    result = replay_entry(entry)
    assert result.ok and not result.trace_stale
    assert result.outcome.invariant == "ISO-PCP"


def test_a_changed_message_diverges_at_its_action(entry):
    bad = attrs.evolve(entry, expect=attrs.evolve(entry.expect, message="something else"))
    (d,) = replay_entry(bad).divergences
    assert (d.profile, d.at) == ("v5.9-nofix", 7)
    assert d.expected.endswith("something else") and "pfn 56" in d.actual


def test_a_later_expectation_diverges_where_the_failure_now_shows():
    e = make_entry(NOFIX, Geometry(), RACE[:-1], FoundBy("random"))
    assert e.expect.at == END
    bad = attrs.evolve(e, expect=Expect("ISO-PCP", 2, "x"))
    (d,) = replay_entry(bad).divergences
    assert d.at == 2 and d.actual.startswith("OFFLINE-TERM at rest")


def test_a_fix_that_does_not_hold_diverges_on_that_profile(entry):
    bad = attrs.evolve(entry, must_pass=("v5.10", "v5.9-nofix"))
    (d,) = replay_entry(bad).divergences
    assert (d.profile, d.at, d.expected) == ("v5.9-nofix", 7, "passes")
    assert d.actual.startswith("ISO-PCP after action 7")


def test_an_action_not_enabled_on_a_fixed_profile_diverges():
    """get_hwpoison_page exists on v5.11 only: a v5.11 trace using it cannot run on v5.10."""
    actions = (Start(0, "alloc_pages", (0, 1)), Step(0), Start(0, "get_hwpoison_page", ()))
    e = make_entry(
        get_profile("v5.11"), Geometry(), actions, FoundBy("random"), must_pass=("v5.10",)
    )
    (d,) = replay_entry(e).divergences
    assert (d.profile, d.at) == ("v5.10", 2)
    assert "not enabled" in d.actual


def test_nondeterminism_is_caught(entry, monkeypatch):
    prints = iter(["a", "b"])
    monkeypatch.setattr(replay_module, "fingerprint", lambda _s: next(prints))
    (d,) = replay_entry(entry).divergences
    assert "nondeterministic" in d.actual


def test_a_reworded_trace_is_not_a_divergence(entry):
    e = attrs.evolve(entry, trace=(*entry.trace[:-1], "old wording"))
    result = replay_entry(e)
    assert result.ok and result.trace_stale
    assert "old wording" in result.first_trace_difference()


# ---- the command ---------------------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(main, ["replay", *args])


@pytest.fixture
def corpus(tmp_path, entry) -> Path:
    save_entry(entry, tmp_path)
    return tmp_path


def test_cli_exit_0_when_all_behave(corpus):
    result = run(str(corpus))
    assert result.exit_code == 0, result.output
    assert "1 entry: 1 ok, 0 diverged, 0 malformed" in result.output


def test_cli_defaults_to_corpus_dir(corpus, monkeypatch):
    monkeypatch.chdir(corpus.parent)
    corpus.rename(corpus.parent / "corpus")
    assert run().exit_code == 0


def test_cli_exit_1_names_the_first_differing_action(corpus, entry):
    bad = attrs.evolve(entry, expect=attrs.evolve(entry.expect, at=5))
    path = write(corpus, "diverging.json", dumps(bad))
    result = run(str(corpus))
    assert result.exit_code == 1
    assert f"DIVERGED  {path}" in result.output
    assert "behaviour first differs at action 5 (CPU0 drain work)" in result.output
    assert "expected: ISO-PCP after action 5" in result.output
    assert "actual:   ISO-PCP after action 7" in result.output
    assert "1 ok, 1 diverged" in result.output


@pytest.mark.parametrize("kind", ["bad-json", "unknown-field", "unknown-profile", "unknown-op"])
def test_cli_exit_2_on_malformed_input_and_replays_the_rest(corpus, entry, kind):
    make, reason = MALFORMED[kind]
    path = write(corpus, "bad.json", make(entry))
    result = run(str(corpus))
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line]
    assert errors == [errors[0]] and errors[0].startswith(f"malformed {path}: {reason}")
    assert "Traceback" not in result.output
    assert "1 ok, 0 diverged, 1 malformed" in result.stdout


def test_cli_exit_2_on_an_action_not_enabled(corpus, entry):
    bad = attrs.evolve(entry, actions=(entry.actions[1], *entry.actions[1:]))
    path = write(corpus, "bad.json", dumps(bad))
    result = run(str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"malformed {path}: actions[0]: not enabled")


def test_cli_exit_2_on_a_missing_path(tmp_path):
    result = run(str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_cli_updates_stale_traces(corpus, entry):
    path = corpus / entry.profile / entry.file_name()
    path.write_text(dumps(attrs.evolve(entry, trace=("old",))))
    result = run(str(corpus))
    assert result.exit_code == 0 and "trace rendering changed" in result.output
    assert run("--update-traces", str(corpus)).exit_code == 0
    assert load_entry(path) == entry


def test_installed_command(corpus, entry):
    write(corpus, "bad.json", MALFORMED["unknown-op"][0](entry))
    exe = shutil.which(
        "pcpfuzz",
        path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    assert exe is not None
    proc = subprocess.run([exe, "replay", str(corpus)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"malformed {corpus / 'bad.json'}: actions[2].op: unknown operation 'foo'"
    )
    assert "1 ok, 0 diverged, 1 malformed" in proc.stdout


def test_the_engine_names_known_to_the_corpus_are_the_registry_s():
    from pcpfuzz.engines.registry import ENGINE_NAMES, load_engines

    assert set(ENGINE_NAMES) == set(load_engines())
