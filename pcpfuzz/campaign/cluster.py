"""Running work units on a Dask cluster: a ``LocalCluster`` of N worker processes, or an
existing scheduler; units are kept in flight on every worker thread until each profile is done.

Faults: a worker that dies takes only its running units with it; the scheduler runs them again
elsewhere (a unit is deterministic, so the result does not change) and the campaign names them;
a unit whose workers keep dying (``KilledWorker``) is reported lost. Ctrl-C cancels every unit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dask
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed
from distributed.comm import parse_address, parse_host_port
from distributed.comm.registry import get_backend

from pcpfuzz.campaign.tally import ProfileTally
from pcpfuzz.campaign.units import Outcome, Unit, prepare, run_unit

IN_FLIGHT_PER_THREAD = 1
"""Units out per worker thread: a unit's seconds count from when it is sent, so none waits in
a queue (a thread waits one round trip between units, a few milliseconds)."""


class Unreachable(Exception):
    """The scheduler cannot be used (bad address, not reachable, no workers): one line."""


def _connect_timeout() -> float:
    """Dask's connect timeout (``distributed.comm.timeouts.connect``), in seconds."""
    return dask.utils.parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))


@contextmanager
def connect(workers: int | None, scheduler: str | None) -> Iterator[Client]:
    """A client of a new ``LocalCluster`` of ``workers`` single-threaded worker processes, or
    of the scheduler at ``scheduler``; raises ``Unreachable`` before anything runs."""
    if scheduler is None:
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            client.run(prepare)
            yield client
        return
    timeout = _connect_timeout()
    try:
        _check_address(scheduler)  # a Client half made of a bad address fails again at exit
        client = Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise Unreachable(f"cannot use the Dask scheduler {scheduler}: {reason}") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise Unreachable(f"the Dask scheduler {scheduler} has no workers ({e})") from None
        try:
            client.run(prepare)
        except ImportError as e:
            raise Unreachable(f"the workers of {scheduler} cannot import pcpfuzz: {e}") from None
        yield client


def _check_address(address: str) -> None:
    """Raise ``ValueError`` unless ``address`` is a Dask address (``tcp://HOST:PORT``)."""
    scheme, location = parse_address(address)
    get_backend(scheme)
    if scheme in ("tcp", "tls"):
        parse_host_port(location)


def threads(client: Client) -> int:
    """Worker threads in the cluster."""
    return sum(w["nthreads"] for w in client.scheduler_info()["workers"].values())


class Runner:
    """Sends units of ``tallies`` to ``client``'s workers and records what comes home;
    ``on_outcome`` is told each outcome (the client saves findings there), ``on_progress``
    (units done, model steps) after each."""

    def __init__(
        self,
        client: Client,
        tallies: Sequence[ProfileTally],
        on_outcome: Callable[[Outcome], None],
        on_progress: Callable[[int, int], None],
    ) -> None:
        self.client = client
        self.tallies = list(tallies)
        self.on_outcome = on_outcome
        self.on_progress = on_progress
        self.limit = IN_FLIGHT_PER_THREAD * max(1, threads(client))
        self.futures: dict[str, tuple[Future, ProfileTally, Unit]] = {}
        self.pending = as_completed(loop=client.loop)
        self.units_done = 0
        self.model_steps = 0

    def run(self) -> None:
        """Until every profile is done; on any exception (Ctrl-C) every unit is cancelled."""
        self.client.subscribe_topic("all", self._event)
        try:
            self._fill()
            while any(not t.done for t in self.tallies):
                batch = self.pending.next_batch(block=True) if self.futures else []
                for future in batch:
                    self._settle(future)
                for t in self.tallies:
                    t.check_deadline()
                self._fill()
                if not self.futures and not batch:
                    time.sleep(0.01)
        except BaseException:
            self.cancel()
            raise
        finally:
            self.client.unsubscribe_topic("all")

    def cancel(self) -> int:
        """Cancel every unit still out; how many there were."""
        out = [f for f, _, _ in self.futures.values()]
        if out:
            self.client.cancel(out)
        self.futures.clear()
        return len(out)

    def _fill(self) -> None:
        """Send units while threads are free, each to the profile with the fewest out (the
        profiles share the workers evenly)."""
        active = list(self.tallies)
        while active and len(self.futures) < self.limit:
            t = min(active, key=lambda t: (len(t.running), t.sent))
            unit = t.next_unit(time.monotonic())
            if unit is None:
                active.remove(t)
                continue
            future = self.client.submit(run_unit, unit, pure=False)
            self.futures[future.key] = (future, t, unit)
            self.pending.add(future)

    def _settle(self, future: Future) -> None:
        entry = self.futures.pop(future.key, None)
        if entry is None:  # cancelled
            return
        _, tally, unit = entry
        try:
            outcome: Outcome = future.result()
        except KilledWorker as e:
            tally.drop(unit, lost=f"lost: {e}")
        else:
            tally.record(outcome)
            self.units_done += 1
            self.model_steps += outcome.campaign.model_steps
            self.on_outcome(outcome)
        for extra in tally.superfluous():
            for key, (f, t, u) in list(self.futures.items()):
                if t is tally and u == extra:
                    f.cancel()
                    del self.futures[key]
                    tally.drop(u)
        self.on_progress(self.units_done, self.model_steps)

    def _event(self, event: tuple[float, dict[str, Any]]) -> None:
        """A worker left with units running: the scheduler runs them again elsewhere."""
        _, msg = event
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        if msg.get("expected"):
            return
        for key in msg.get("processing-tasks", ()):
            entry = self.futures.get(key)
            if entry is not None:
                _, tally, unit = entry
                tally.retried.append(f"{unit} (worker {msg.get('worker')} died; run again)")
