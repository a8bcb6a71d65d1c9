"""Drive the executable model through the events the kernels went through: memory blocks onlined
and offlined in one zone (recording every CPU's (high, batch) after each atomic step), and the
fraction sysctl. Everything goes through ``System.apply``; the driver is deterministic (the task
steps whenever it can, else the lowest CPU with pending drain work runs it).

The model's zone is made of two small blocks; ``sizing_scale`` makes its sizing see the kernel's
block size (a 128 MiB block is 32768 pages: 5.x high and batch, v6.1 batch, its high following
the model's own watermarks). The offline window compares the model's values by role
(``window.translate``); the per-snapshot sizes come from ``rules``.
"""

from collections.abc import Sequence

import attrs

from pcpfuzz.actions import RunWork, Start, Step
from pcpfuzz.constants import EBUSY, EINTR, EINVAL
from pcpfuzz.crosscheck.snapshot import Pair
from pcpfuzz.geometry import Geometry
from pcpfuzz.profiles import Profile, get_profile
from pcpfuzz.system import System

MODEL_BLOCK_PAGES = 16
MODEL_BLOCKS = 2
_ERRNO_NAMES = {0: "0", EINVAL: "EINVAL", EBUSY: "EBUSY", EINTR: "EINTR"}
_STEP_BOUND = 100_000


class ModelError(RuntimeError):
    """The model did not finish an operation cleanly (blocked with nothing to run, never ended,
    or reported a violation the kernel code itself detects)."""


@attrs.frozen
class HotplugResult:
    """One ``online_pages`` / ``offline_pages`` call in the model, in kernel-sized pages."""

    outcome: str
    managed_delta: int
    present_delta: int
    has_pagesets: bool
    """The zone has real pagesets afterwards (not the boot pageset of an empty zone)."""
    states: tuple[tuple[Pair, ...], ...]
    """Every CPU's (high, batch) before the call and after each of its atomic steps."""


def errno_name(ret: int | None) -> str:
    """``0``, ``EINVAL``, ... for a kernel return value."""
    return _ERRNO_NAMES.get(ret or 0, str(ret))


def _system(
    profile: Profile, kernel_block_pages: int, nr_cpus: int, fraction: int, online_blocks: int
) -> System:
    geo = Geometry(
        nr_blocks=MODEL_BLOCKS,
        block_pages=MODEL_BLOCK_PAGES,
        nr_cpus=nr_cpus,
        fraction=fraction,
        sizing_scale=kernel_block_pages // MODEL_BLOCK_PAGES,
        online_blocks=online_blocks,
    )
    return System(profile, geo, tracing=True)


def _pcp_state(s: System) -> tuple[Pair, ...]:
    return tuple((pcp.high, pcp.batch) for pcp in s.pcp)


def run_op(
    s: System, op: str, args: tuple[int, ...], cpu: int = 0
) -> tuple[int | None, list[tuple[Pair, ...]]]:
    """Run ``op`` on ``cpu`` to its end; return its value and the pcp state after every step."""
    states = [_pcp_state(s)]
    s.apply(Start(cpu=cpu, op=op, args=args))
    states.append(_pcp_state(s))
    for _ in range(_STEP_BOUND):
        task = s.cpus[cpu].task
        if task is None:
            if s.bugs:
                raise ModelError(f"model {op}{args} reported {s.bugs[0]}")
            return s.returned[cpu][1], states
        if task.runnable(s):
            s.apply(Step(cpu=cpu))
        elif s.runnable_work():
            s.apply(RunWork(cpu=s.runnable_work()[0]))
        else:
            raise ModelError(f"model {op}{args} is blocked with nothing to run")
        states.append(_pcp_state(s))
    raise ModelError(f"model {op}{args} did not end within {_STEP_BOUND} steps")


def hotplug_replay(
    profile_name: str,
    calls: Sequence[tuple[bool, int]],
    kernel_block_pages: int,
    nr_cpus: int,
    fraction: int,
) -> list[HotplugResult]:
    """Replay ``calls`` ((online?, block) pairs) on an initially empty two-block zone."""
    s = _system(get_profile(profile_name), kernel_block_pages, nr_cpus, fraction, 0)
    scale = s.geo.sizing_scale
    results = []
    for online, block in calls:
        managed, present = s.zone.managed_pages, s.zone.present_pages
        ret, states = run_op(s, "online_pages" if online else "offline_pages", (block,))
        results.append(
            HotplugResult(
                outcome=errno_name(ret),
                managed_delta=(s.zone.managed_pages - managed) * scale,
                present_delta=(s.zone.present_pages - present) * scale,
                has_pagesets=not s.zone.pageset_is_boot,
                states=tuple(states),
            )
        )
    return results


def fraction_write(profile_name: str, old: int, new: int, nr_cpus: int) -> tuple[str, int]:
    """The model's fraction sysctl handler on a populated zone: (outcome, value afterwards)."""
    profile = get_profile(profile_name)
    s = _system(profile, MODEL_BLOCK_PAGES, nr_cpus, old, MODEL_BLOCKS)
    sysctl = "percpu_pagelist_high_fraction" if profile.pcp_spinlock else "percpu_pagelist_fraction"
    ret, _states = run_op(s, sysctl, (new,))
    return errno_name(ret), s.fraction
