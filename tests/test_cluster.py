"""Distributed campaigns on a real Dask ``LocalCluster`` of two worker processes (shared by the
module), run through the ``pcpfuzz fuzz`` command; and the shared Redis example database of the
property suite against a real ``redis-server``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed", reason="needs pcpfuzz[cluster]")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_cli import assert_one_line_error, json_lines, pcpfuzz  # noqa: E402

from pcpfuzz.campaign.tally import ProfileTally  # noqa: E402
from pcpfuzz.campaign.units import Unit, run_unit, units_for  # noqa: E402
from pcpfuzz.corpus import load_entry  # noqa: E402
from stateful.settings import database  # noqa: E402

FAST_CONNECT = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.Client]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as c,
        distributed.Client(c) as client,
    ):
        yield client


def fuzz(*args: str, corpus: Path | None = None) -> tuple[int, list[dict]]:
    extra = ("--corpus", str(corpus)) if corpus is not None else ()
    done = pcpfuzz("fuzz", *args, *extra, "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json_lines(done.stdout)


SAME = ("found", "invariant", "actions", "message")


@pytest.mark.parametrize(("engine", "examples"), [("random", 160), ("pct", 600)])
def test_findings_equal_a_serial_runs(
    cluster: distributed.Client, engine: str, examples: int, tmp_path: Path
) -> None:
    """Seed 0 fails at example 9 (random) and 507 (pct): in a unit after the first for pct."""
    args = ("--engine", engine, "--profile", "v5.9-nofix", "--profile", "v5.10")
    args += ("--max-examples", str(examples), "--time", "120")
    status, serial = fuzz(*args, corpus=tmp_path / "serial")
    on_cluster = ("--scheduler", cluster.scheduler.address)
    cluster_status, spread = fuzz(*args, *on_cluster, corpus=tmp_path / "cluster")
    assert cluster_status == status == 1
    assert [{k: r[k] for k in SAME} for r in spread] == [{k: r[k] for k in SAME} for r in serial]
    assert spread[0]["found"] and spread[1]["examples"] == serial[1]["examples"] == examples
    assert spread[1]["units"] > 1  # the profile really was cut into units
    # the same entry, under the same content-hash name
    assert Path(spread[0]["corpus_entry"]).name == Path(serial[0]["corpus_entry"]).name
    assert spread[0]["first_finder"]["worker"].startswith("tcp://")


def test_findings_from_many_units_are_one_corpus_file(
    cluster: distributed.Client, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    on_cluster = ("--scheduler", cluster.scheduler.address, "--profile", "v5.9-nofix")
    fuzz(*on_cluster, "--max-examples", "40", corpus=corpus)  # 5-example units, several find
    first = {p.name: p.read_text() for p in (corpus / "v5.9-nofix").iterdir()}
    _, [row] = fuzz(*on_cluster, "--max-examples", "40", corpus=corpus)
    again = {p.name: p.read_text() for p in (corpus / "v5.9-nofix").iterdir()}
    assert again == first and Path(row["corpus_entry"]).name in first  # nothing added
    assert all(load_entry(p).expect is not None for p in (corpus / "v5.9-nofix").iterdir())


def test_tally_takes_the_first_failure_in_serial_order_whatever_comes_home_first() -> None:
    plan = list(units_for("v5.9-nofix", "random", 0, 20, 5))
    assert plan == [(0, 0, 5), (0, 5, 5), (0, 10, 5), (0, 15, 5)]  # seed 0, its 20 episodes
    tally = ProfileTally.start("v5.9-nofix", "random", 0, 20, 60.0, 5)
    sent = [tally.next_unit(time.monotonic()) for _ in plan]
    assert [(u.seed, u.first, u.examples, u.index) for u in sent] == [
        (*spec, i) for i, spec in enumerate(plan)
    ]
    outcomes = [run_unit(u) for u in sent]  # the real engine, one unit at a time
    finders = [o for o in outcomes if o.campaign.failure is not None]
    assert finders, "seed 0 fails within its first 20 episodes (episode 16)"
    for o in reversed(outcomes):  # the last unit home first
        tally.record(o)
        assert tally.finding is None or o.unit.index <= finders[0].unit.index
    assert tally.finding == finders[0]
    serial = run_unit(Unit("v5.9-nofix", "random", 0, 0, 20, 60.0, 0))
    assert tally.finding.campaign.failure == serial.campaign.failure
    assert tally.first_finder()["example"] == serial.example


def test_a_killed_worker_loses_nothing(cluster: distributed.Client) -> None:
    args = ("fuzz", "--scheduler", cluster.scheduler.address, "--profile", "v5.11")
    proc = subprocess.Popen(
        [*pcpfuzz_argv(), *args, "--max-examples", "1200", "--time", "300", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        busy = _wait_for(lambda: [w for w, ks in cluster.processing().items() if ks])
        pid = cluster.run(os.getpid, workers=busy[:1])[busy[0]]
        os.kill(pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    [row] = json_lines(out)
    assert row["examples"] == 1200 and row["lost"] == []  # the unit ran again, in full
    assert row["retried"] and "died" in err
    cluster.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


def test_ctrl_c_cancels_the_units_and_keeps_the_findings(tmp_path: Path) -> None:
    psutil = pytest.importorskip("psutil")
    corpus = tmp_path / "corpus"
    args = ("fuzz", "--workers", "2", "--profile", "v5.9-nofix", "--profile", "v5.11")
    proc = subprocess.Popen(
        [*pcpfuzz_argv(), *args, "--time", "120", "--corpus", str(corpus)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: list(corpus.glob("v5.9-nofix/*.json")), timeout=60)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children  # the cluster's processes
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert time.monotonic() - began < 30
    assert "interrupted" in err and "1 finding(s) saved" in err
    [entry] = corpus.glob("v5.9-nofix/*.json")
    assert load_entry(entry).expect is not None
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:1", "nonsense://nowhere", "no-port", "tcp://no-such-host.invalid:8786"],
)
def test_a_bad_scheduler_is_a_one_line_error_before_anything_runs(
    address: str, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    done = subprocess.run(
        [*pcpfuzz_argv(), "fuzz", "--scheduler", address, "--corpus", str(corpus)],
        capture_output=True,
        text=True,
        timeout=60,
        env=FAST_CONNECT,
        check=False,
    )
    assert_one_line_error(done, "--scheduler")
    assert not corpus.exists()


def test_workers_and_scheduler_together_are_refused() -> None:
    done = pcpfuzz("fuzz", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1")
    assert_one_line_error(done, "not both")


def pcpfuzz_argv() -> list[str]:
    return [str(Path(sys.executable).with_name("pcpfuzz"))]


def _wait_for(probe, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s")


# ---- the property suite's shared example database ------------------------------------------


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    pytest.importorskip("redis", reason="needs hypothesis[redis] (pcpfuzz[cluster])")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    where = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(where)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        _wait_for(lambda: _answers(url), timeout=10)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.RedisError:
        return False


def _property(db: object, tried: list[int]):  # type: ignore[no-untyped-def]
    @settings(database=db, max_examples=500, derandomize=False)
    @given(st.integers(min_value=0, max_value=10**6))
    def prop(x: int) -> None:
        tried.append(x)
        assert x < 1000

    return prop


def test_a_failure_one_machine_found_replays_first_on_another(redis_url: str) -> None:
    here: list[int] = []
    with pytest.raises(AssertionError):
        _property(database(redis_url), here)()  # machine A finds and shrinks it
    there: list[int] = []
    with pytest.raises(AssertionError):
        _property(database(redis_url), there)()  # machine B: its own connection
    assert there[0] == 1000 == min(x for x in here if x >= 1000)


def test_the_pytest_option_uses_the_database_and_ci_refuses_it(redis_url: str) -> None:
    base = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "--co", "-q"]
    base += ["tests/test_smoke.py", "--pcpfuzz-db", redis_url]
    root = Path(__file__).resolve().parent.parent
    ok = subprocess.run([*base, "--pcpfuzz-settings", "dev"], cwd=root, capture_output=True)
    assert ok.returncode == 0, ok.stderr
    ci = subprocess.run(
        [*base, "--pcpfuzz-settings", "ci"], cwd=root, capture_output=True, text=True
    )
    assert ci.returncode == 4 and "database-free" in ci.stderr
