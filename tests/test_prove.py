"""``pcpfuzz prove``: the exhaustive search proves small configurations, finds the violations
the fuzzers find (with the shortest trace), honours its bounds and limits, and its canonical
state merges what only history tells apart."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PURE_ONLY

from pcpfuzz.actions import Start, Step
from pcpfuzz.cli.prove import prove_geometry
from pcpfuzz.corpus import load_entry
from pcpfuzz.engines.base import Budget
from pcpfuzz.engines.registry import load_engines
from pcpfuzz.profiles import get_profile
from pcpfuzz.prove.canonical import canonical_state, state_key
from pcpfuzz.prove.explore import Bounds, prove
from pcpfuzz.prove.scope import BadScope, parse_scope
from pcpfuzz.shrink import shrink
from pcpfuzz.system import System
from pcpfuzz.trace import execute

PCPFUZZ = str(Path(sys.executable).with_name("pcpfuzz"))
GEO = prove_geometry(2, 1, None, 8, None)
POPULATED = prove_geometry(2, 2, None, 8, None)
"""Two blocks: one offline cannot empty the zone, which uses a freed pageset on every 5.x
kernel (PCP-UAF; ``tests/test_stateful.py``)."""
SMALL = "alloc_pages(0,MOVABLE)*1,offline_pages*1,signal"
"""A scope whose v5.11 proof closes in about a second."""


def pcpfuzz(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PCPFUZZ, "prove", *args], capture_output=True, text=True, timeout=120)


@PURE_ONLY
def test_small_proof_exits_0_and_says_what_it_covered() -> None:
    r = pcpfuzz("--profile", "v5.11", "--blocks", "2", "--ops", SMALL, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["verdict"] == "proved" and out["actions"] is None
    assert out["stats"]["states"] > 100 and out["stats"]["leaves"] > 0


@PURE_ONLY
def test_small_violation_exits_1_renders_and_saves_a_replayable_entry(tmp_path: Path) -> None:
    r = pcpfuzz("--profile", "v5.9-nofix", "--corpus", str(tmp_path))
    assert r.returncode == 1, r.stderr
    assert "ISO-PCP violated" in r.stdout and "shortest counterexample (10 actions)" in r.stdout
    assert "free_unref_page_commit(pfn 0): pcp0.lists[MOVABLE] += 0" in r.stdout
    (path,) = (tmp_path / "v5.9-nofix").iterdir()
    entry = load_entry(path)
    assert entry.found_by.engine == "prove" and entry.expect.invariant == "ISO-PCP"
    assert execute(get_profile(entry.profile), entry.geometry, entry.actions).at == 9


@PURE_ONLY
def test_limits_end_with_exit_3_and_never_claim_a_proof() -> None:
    r = pcpfuzz("--profile", "v5.11", "--max-states", "50")
    assert r.returncode == 3
    assert r.stdout.splitlines()[1].startswith("not proved: --max-states 50 stopped the search")
    assert "proved within" not in r.stdout


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (("--profile", "v9.9"), "unknown profile 'v9.9'"),
        (("--profile", "v5.11", "--ops", "alloc_pages(0,BLUE)"), "'BLUE' is not an integer"),
        (("--profile", "v5.11", "--ops", "teleport"), "unknown operation 'teleport'"),
        (("--profile", "v5.11", "--ops", "offline_pages@5"), "only 2 CPUs"),
        (("--profile", "v5.11", "--preemptions", "many"), "'many' is not a count"),
        (("--profile", "v5.11", "--time", "nan"), "not a finite number of seconds"),
        (("--profile", "v5.11", "--corpus", "/proc/self"), "--corpus"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], culprit: str) -> None:
    r = pcpfuzz(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and culprit in r.stderr


def test_scope_parses_limits_cpus_kinds_and_the_spin_preset() -> None:
    scope = parse_scope("spin,offline_pages@1*1,run", 2)
    assert str(scope) == "alloc_pages(0,1)*2,free_pages,offline_pages*1,offline_pages@1*1,run"
    with pytest.raises(BadScope, match="names no operation"):
        parse_scope("run", 2)


@PURE_ONLY
def test_shortest_iso_pcp_equals_the_shrunk_fuzzer_trace() -> None:
    """Breadth-first with the fuzzers' actions (``Run`` included, and a retry bound no ``Run``
    reaches) finds ISO-PCP in exactly as many actions as a random campaign shrinks it to,
    and the shrinker cannot shorten the breadth-first trace."""
    profile = get_profile("v5.9-nofix")
    scope = parse_scope("alloc_pages(0)*2,free_pages,offline_pages*1,run", 2)
    p = prove(profile, POPULATED, scope, Bounds(preemptions=None, retries=1000), only="ISO-PCP")
    assert p.verdict == "violation" and p.failure is not None
    campaign = load_engines()["random"](profile, POPULATED, 0, Budget(2000, 30.0, 30))
    assert campaign.failure is not None and campaign.failure.violation.invariant == "ISO-PCP"
    assert len(p.failure.actions) == len(campaign.failure.actions)
    assert len(shrink(p.failure).actions) == len(p.failure.actions)


@PURE_ONLY
def test_v5_9_race_needs_a_preemption() -> None:
    """With no preemption the race cannot happen; the verdict says the bound cut schedules."""
    p = prove(get_profile("v5.9-nofix"), GEO, parse_scope("spin", 2), Bounds(preemptions=0))
    assert p.verdict == "proved" and p.stats.cut_preemptions > 0
    assert prove(get_profile("v5.9-nofix"), GEO, parse_scope("spin", 2)).verdict == "violation"


@PURE_ONLY
def test_dfs_finds_the_race_and_proves_the_same_scope() -> None:
    dfs = Bounds(dfs=True)
    found = prove(get_profile("v5.9-nofix"), POPULATED, parse_scope("spin", 2), dfs)
    # Depth-first meets the race deep in a retry loop first: the stale free strands the
    # page on a pcplist, seen at rest (OFFLINE-TERM) or at once (ISO-PCP).
    assert found.failure is not None
    assert found.failure.violation.invariant in ("ISO-PCP", "OFFLINE-TERM")
    message = found.failure.violation.message.replace("is on", "on")
    assert re.search(r"pfn \d+ on CPU0's MOVABLE pcplist", message), message
    bfs = prove(get_profile("v5.11"), POPULATED, parse_scope(SMALL, 2))
    proof = prove(get_profile("v5.11"), POPULATED, parse_scope(SMALL, 2), dfs)
    assert proof.verdict == bfs.verdict == "proved"
    assert proof.stats.states == bfs.stats.states


@PURE_ONLY
def test_zoo_bug_found_by_the_search() -> None:
    geo = prove_geometry(2, 2, 1, 8, None)
    p = prove(
        get_profile("v5.8-online-nopcpupdate"),
        geo,
        parse_scope("offline_pages*1,online_pages*1", 2),
    )
    assert p.failure is not None and p.failure.violation.invariant == "PCP-HB"


def _run(actions: list) -> System:
    """Apply ``actions``; a ``Step`` stands for: step that CPU's task to its end."""
    s = System(get_profile("v5.11"), GEO)
    for a in actions:
        if isinstance(a, Step):
            while s.cpus[a.cpu].task is not None:
                s.apply(a)
        else:
            s.apply(a)
    return s


@PURE_ONLY
def test_canonical_state_forgets_history_and_task_ids() -> None:
    """Two allocations in either order (task ids 0/1 swapped) reach one state; an allocation
    after an allocation and free of the same page reaches the state of the allocation alone,
    with other history counters."""
    alloc = "alloc_pages", (0, 1)
    a = _run([Start(0, *alloc), Start(1, *alloc), Step(1), Step(0)])
    b = _run([Start(1, *alloc), Start(0, *alloc), Step(0), Step(1)])
    assert state_key(a) == state_key(b)
    c = _run([Start(0, *alloc), Step(0)])
    d = _run(
        [
            Start(0, *alloc),
            Step(0),
            Start(0, "free_pages", (0,)),
            Step(0),
            Start(0, *alloc),
            Step(0),
        ]
    )
    assert d.steps > c.steps and d.allocated.keys() == c.allocated.keys()
    assert canonical_state(c) == canonical_state(d)


@PURE_ONLY
def test_canonical_state_sees_where_a_task_is_suspended() -> None:
    """The same data with the offline at two different program points are two states."""
    a = _run([Start(1, "offline_pages", (0,))])
    b = _run([Start(1, "offline_pages", (0,))])
    b.apply(Step(1))
    assert a.cpus[1].task is not None and b.cpus[1].task is not None
    assert state_key(a) != state_key(b)


@PURE_ONLY
def test_benchmark_script_runs_quick(tmp_path: Path) -> None:
    """``benchmarks/prove.py --quick`` runs (with Spin when it is installed) and writes JSON."""
    out = tmp_path / "prove.json"
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "prove.py"
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--spin-repeats", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(out.read_text())
    assert {r["verdict"] for r in data["prove"]} == {"violation"}
    assert all(s["states"] > 0 for s in data["spin"])
