"""Shared helpers for the model's tests: build a system, drive its tasks through ``apply``, run a
kernel generator to its end, and shape buddy and pcplist states with the model's own functions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pcpfuzz import BUILD
from pcpfuzz.actions import RunWork, Step
from pcpfuzz.constants import MT
from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.mm.buddy import __rmqueue_smallest, free_one_page, get_pfnblock_migratetype
from pcpfuzz.mm.isolation import set_migratetype_isolate
from pcpfuzz.mm.pcp import free_unref_page_commit
from pcpfuzz.profiles import get_profile
from pcpfuzz.state import Task, TaskGen, Wait
from pcpfuzz.system import System
from pcpfuzz.violation import Violation

BOUND = 5_000
PURE_ONLY = pytest.mark.skipif(
    BUILD.compiled,
    reason="reads the tasks' generator frames, which compiled (mypyc) generators do not have",
)
"""For a test that walks generator frames (``gi_code``, ``f_locals``): the pure build only."""


def make(profile: str = "v5.11", **geometry: object) -> System:
    """A traced system of ``profile`` on ``Geometry(**geometry)``."""
    return System(get_profile(profile), Geometry(**geometry), tracing=True)


def lines(s: System, since: int = 0) -> list[str]:
    """The kernel-style trace lines from index ``since`` on."""
    return [text for _n, _cpu, text in s.log[since:]]


def names(violations: list[Violation]) -> list[str]:
    """The invariant names of ``violations``, in order."""
    return [v.invariant for v in violations]


def kernel_task(cpu: int = 0) -> Task:
    """A task on ``cpu`` that the unit tests pass to kernel functions called directly."""
    return Task(10_000 + cpu, cpu, "test", (), None)  # type: ignore[arg-type]


def isolate_pageblock(s: System, pfn: int, cpu: int = 0) -> int | None:
    """``set_migratetype_isolate`` on ``pfn``'s pageblock by a unit test, which then holds it
    as an isolation user would (so ISO-REST does not report it while the test holds it)."""
    t = kernel_task(cpu)
    ret = run_gen(set_migratetype_isolate(s, t, pfn, MT.MOVABLE))
    if ret == 0:
        start = pfn & ~(s.geo.pageblock_nr_pages - 1)
        s.isolation_begin(t, start, start + s.geo.pageblock_nr_pages, "test")
    return ret


def run_gen(gen: TaskGen) -> int | None:
    """Run a kernel generator to its end with nothing else interleaved; it must never sleep."""
    try:
        while True:
            y = next(gen)
            assert not isinstance(y, Wait), f"blocked in {y.describe()}"
    except StopIteration as stop:
        return stop.value


def step_until(
    s: System,
    cpu: int,
    done: Callable[[System], bool],
    bound: int = BOUND,
    checked: bool = False,
) -> int:
    """Step the task on ``cpu`` (running pending drain work while it sleeps) until ``done``;
    returns the number of actions applied. Fails if the task ends or blocks first, or, when
    ``checked``, if an invariant fails after an action."""
    for n in range(bound):
        if done(s):
            return n
        t = s.cpus[cpu].task
        assert t is not None, f"CPU{cpu}'s task ended before the condition held"
        if t.runnable(s):
            s.apply(Step(cpu))
        elif s.runnable_work():
            s.apply(RunWork(s.runnable_work()[0]))
        else:
            raise AssertionError(f"CPU{cpu}'s {t.op} is blocked in {t.wait.describe()}")
        if checked:
            holds(s)
    raise AssertionError(f"condition not reached in {bound} actions")


def finish_task(s: System, cpu: int, bound: int = BOUND, checked: bool = False) -> int | None:
    """Drive the task on ``cpu`` to its end like ``step_until``; returns its return value."""
    step_until(s, cpu, lambda x: x.cpus[cpu].task is None, bound, checked)
    return s.returned[cpu][1]


def take_all(s: System) -> list[int]:
    """Allocate every free page as an order-0 page of the pool (``__rmqueue_smallest`` with
    the free-count update of ``rmqueue``); returns the pfns in allocation order."""
    t = kernel_task()
    taken = []
    for mt in (MT.UNMOVABLE, MT.MOVABLE, MT.RECLAIMABLE, MT.CMA):
        while (pfn := __rmqueue_smallest(s, 0, mt)) is not None:
            s.zone.nr_free_pages -= 1
            if mt == MT.CMA:
                s.zone.nr_free_cma_pages -= 1
            s.allocate(pfn, 0, mt == MT.MOVABLE, None, t)
            taken.append(pfn)
    s.alloc_log.clear()
    return taken


def give(s: System, *pfns: int) -> None:
    """Free pool pages straight to the buddy (``free_one_page`` with the pageblock's type)."""
    for pfn in pfns:
        order = s.release(pfn)
        del s.inflight[pfn]
        free_one_page(s, pfn, order, get_pfnblock_migratetype(s, pfn))


def to_pcp(s: System, cpu: int, pfn: int, mt: int) -> None:
    """Free pool page ``pfn`` onto ``cpu``'s pcplist as ``free_unref_page_commit`` does, with
    cached migratetype ``mt`` (as if prepare had read it)."""
    s.release(pfn)
    s.cached_mt[pfn] = mt
    run_gen(free_unref_page_commit(s, kernel_task(cpu), pfn))


def free_blocks(s: System) -> set[tuple[int, int, str]]:
    """Every free buddy block as (pfn, order, list type name)."""
    return {
        (pfn, order, MT(mt).name)
        for order, lists in enumerate(s.zone.free_list)
        for mt, fl in enumerate(lists)
        for pfn in fl
    }


def holds(s: System) -> None:
    """Every invariant of the system's profile holds now (checked in full)."""
    found = check(s, full=True)
    assert not found, "; ".join(map(str, found))
