"""The invariants v6.12 states differently or adds (modern-kernels §8.2 (e), §8.3), as pure
checks over a ``System`` running the ``v6.12`` profile; ``pcpfuzz.invariants`` lists them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pcpfuzz.constants import mt_name
from pcpfuzz.mm6.cpuhp import CPUHP_OPS
from pcpfuzz.mm612.pageset import DISABLED, zone_high_min_max_batch
from pcpfuzz.mm612.percpu import PCP_BATCH_SCALE_MAX
from pcpfuzz.violation import Violation

if TYPE_CHECKING:
    from pcpfuzz.system import System


def sizing_under_update(s: System) -> bool:
    """The pagesets may lag the zone (PCP-HB is not checked): the boot pageset, an update under
    ``pcp_batch_high_lock``, memory hotplug, or a CPU hotplug task (v6.x) that has yet to run
    its ``zone_pcp_update`` (high follows the new number of CPUs only from there)."""
    return (
        s.zone.pageset_is_boot
        or s.pcp_batch_high_lock.owner is not None
        or s.mem_hotplug_lock.owner is not None
        or any(t.op in CPUHP_OPS for t in s.tasks())
    )


def check_pcp_hb_612(s: System) -> list[Violation]:
    """PCP-HB (e): while disabled every CPU holds (0, 0, 1); otherwise, outside
    updates (``sizing_under_update``), every CPU's (high_min, high_max, batch) and
    the zone's cache equal §5.3's triple; a ``high`` the owner clamped since the last update
    lies in [high_min, high_max] (when high_min <= high_max)."""
    if s.pcp_disabled:
        return [
            Violation(
                "PCP-HB",
                f"pcplists are disabled but CPU{cpu} has high_min/max/batch "
                f"{pcp.high_min}/{pcp.high_max}/{pcp.batch}, not 0/0/1",
            )
            for cpu, pcp in enumerate(s.pcp)
            if (pcp.high_min, pcp.high_max, pcp.batch) != DISABLED
        ]
    if sizing_under_update(s):
        return []
    want = zone_high_min_max_batch(s)
    out = []
    for cpu, pcp in enumerate(s.pcp):
        have = (pcp.high_min, pcp.high_max, pcp.batch)
        if have != want:
            out.append(
                Violation(
                    "PCP-HB",
                    f"CPU{cpu} has high_min/max/batch {'/'.join(map(str, have))}, but managed "
                    f"{s.zone.managed_pages}, low watermark {s.zone.watermark[1]} and fraction "
                    f"{s.fraction} give {'/'.join(map(str, want))}",
                )
            )
        elif (
            pcp.clamped
            and pcp.high_min <= pcp.high_max
            and not (pcp.high_min <= pcp.high <= pcp.high_max)
        ):
            out.append(
                Violation(
                    "PCP-HB",
                    f"CPU{cpu}'s high {pcp.high} is outside [{pcp.high_min}, {pcp.high_max}] "
                    "after its owner clamped it",
                )
            )
    if s.zone612.triple() != want:
        out.append(
            Violation(
                "PCP-HB",
                f"zone->pageset_high_min/max/batch is {'/'.join(map(str, s.zone612.triple()))}, "
                f"want {'/'.join(map(str, want))}",
            )
        )
    return out


def check_fl_type_strict(s: System) -> list[Violation]:
    """Strict FL-TYPE (§8.2 (e)), at every ``zone->lock`` release: (a) each free block is on
    ``free_list[order][t]`` with ``t`` its head pageblock's type; (b) every pageblock a free
    block above ``pageblock_order`` covers has that type."""
    if s.zone_lock.owner is not None:
        return []
    out = []
    pbo = s.geo.pageblock_order
    for order, lists in enumerate(s.zone.free_list):
        for mt, fl in enumerate(lists):
            for head in fl:
                first = head >> pbo
                types = s.pageblock_mt[first : first + max(1, 1 << order >> pbo)]
                if any(t != mt for t in types):
                    out.append(
                        Violation(
                            "FL-TYPE-STRICT",
                            f"free order-{order} block at pfn {head} is on the {mt_name(mt)} "
                            f"list, its pageblocks are {'/'.join(map(mt_name, types))}",
                        )
                    )
    return out


def check_pcp_bounded(s: System) -> list[Violation]:
    """PCP-BOUNDED (§8.3): ``alloc_factor`` never exceeds ``CONFIG_PCP_BATCH_SCALE_MAX``; the
    decay flush bound is checked where ``decay_pcp_high`` computes it (reported)."""
    out = [v for v in s.bugs if v.invariant == "PCP-BOUNDED"]
    out += [
        Violation("PCP-BOUNDED", f"CPU{cpu}'s alloc_factor is {pcp.alloc_factor}")
        for cpu, pcp in enumerate(s.pcp)
        if pcp.alloc_factor > PCP_BATCH_SCALE_MAX
    ]
    return out
