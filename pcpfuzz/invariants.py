"""The invariants of spec §15 as named, pure checks over a ``System``.

``check(s)`` runs every invariant that applies to the system's profile and returns the
violations, most specific first. OFFLINE-TERM is checked by ``pcpfuzz.liveness`` at the end of
an example; HANG, LOCK-ORDER, the BUG_ON of NO-ALLOC-OFFLINED and PCP-UAF (KASAN's report of a
freed pageset's use) are detected by the model code as it runs and reported here.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from pcpfuzz.constants import MIGRATE_PCPTYPES, MT, mt_name
from pcpfuzz.incremental import incremental_check, unheld_isolated
from pcpfuzz.invariants612 import (
    check_fl_type_strict,
    check_pcp_bounded,
    check_pcp_hb_612,
    sizing_under_update,
)
from pcpfuzz.mm.sizing import BOOT_PAGESET_BATCH, BOOT_PAGESET_HIGH
from pcpfuzz.profiles import Profile
from pcpfuzz.system import System
from pcpfuzz.violation import Violation


@attrs.frozen
class Invariant:
    """A named check, and the profiles whose kernel promises it."""

    name: str
    statement: str
    check: Callable[[System], list[Violation]]
    applies: Callable[[Profile], bool] = lambda _p: True


def _free_blocks(s: System):
    """(head, order, mt) of every block on a buddy freelist."""
    for order, lists in enumerate(s.zone.free_list):
        for mt, fl in enumerate(lists):
            for head in fl:
                yield head, order, mt


def _reported(s: System, name: str) -> list[Violation]:
    return [v for v in s.bugs if v.invariant == name]


def check_iso_pcp(s: System) -> list[Violation]:
    out = []
    for u in s.iso_users:
        if u.kind != "offline":
            continue
        for cpu, pcp in enumerate(s.pcp):
            if s.cpus[cpu].in_section():
                continue
            for idx, lst in enumerate(pcp.lists):
                for pfn in lst:
                    if u.start <= pfn < u.end:
                        out.append(
                            Violation(
                                "ISO-PCP",
                                f"pfn {pfn} of isolated pageblock {s.pb(pfn)} is on CPU{cpu}'s "
                                f"{pcp.list_name(idx)} pcplist",
                            )
                        )
    return out


def check_iso_no_alloc(s: System) -> list[Violation]:
    out = []
    for pfn, order, _tid in s.alloc_log:
        for u in s.iso_users:
            if u.kind == "offline" and u.start <= pfn < u.end:
                out.append(
                    Violation(
                        "ISO-NO-ALLOC",
                        f"an allocation returned pfn {pfn} (order {order}) of isolated "
                        f"pageblock {s.pb(pfn)} while offline holds pfn {u.start}-{u.end - 1}",
                    )
                )
    return out


def check_pcp_off(s: System) -> list[Violation]:
    if not s.pcp_disabled:
        return []
    out = []
    for cpu, c in enumerate(s.cpus):
        if c.online and not c.in_section() and s.pcp[cpu].count:
            pages = [p for lst in s.pcp[cpu].lists for p in lst]
            out.append(
                Violation(
                    "PCP-OFF",
                    f"pcplists are disabled but CPU{cpu}'s pcplist holds {s.pcp[cpu].count} "
                    f"page(s) {pages} with IRQs on",
                )
            )
    return out


def check_no_alloc_offlined(s: System) -> list[Violation]:
    out = list(_reported(s, "NO-ALLOC-OFFLINED"))
    for pfn, _order, _tid in s.alloc_log:
        if not s.page_present[pfn]:
            out.append(Violation("NO-ALLOC-OFFLINED", f"an allocation returned offline pfn {pfn}"))
    for cpu, pcp in enumerate(s.pcp):
        for lst in pcp.lists:
            for pfn in lst:
                if not s.page_present[pfn]:
                    out.append(
                        Violation(
                            "NO-ALLOC-OFFLINED", f"offline pfn {pfn} is on CPU{cpu}'s pcplist"
                        )
                    )
    return out


def check_pcp_hb(s: System) -> list[Violation]:
    if s.pcp_disabled:
        return [
            Violation(
                "PCP-HB",
                f"pcplists are disabled but CPU{cpu} has high {pcp.high} batch {pcp.batch}, "
                f"not {BOOT_PAGESET_HIGH}/{BOOT_PAGESET_BATCH}",
            )
            for cpu, pcp in enumerate(s.pcp)
            if (pcp.high, pcp.batch) != (BOOT_PAGESET_HIGH, BOOT_PAGESET_BATCH)
        ]
    if sizing_under_update(s):
        return []
    want = s.mm.zone_high_batch(s)
    out = []
    for cpu, pcp in enumerate(s.pcp):
        if (pcp.high, pcp.batch) != want or pcp.batch < 1:
            out.append(
                Violation(
                    "PCP-HB",
                    f"CPU{cpu} has high {pcp.high} batch {pcp.batch}, but managed "
                    f"{s.zone.managed_pages} and fraction {s.fraction} give high {want[0]} "
                    f"batch {want[1]}",
                )
            )
    if s.profile.cached_high_batch and (s.zone.pageset_high, s.zone.pageset_batch) != want:
        out.append(
            Violation(
                "PCP-HB",
                f"zone->pageset_high/batch is {s.zone.pageset_high}/{s.zone.pageset_batch}, "
                f"want {want[0]}/{want[1]}",
            )
        )
    return out


def check_conserve(s: System) -> list[Violation]:
    seen = [0] * s.nr_pages
    for head, order, _mt in _free_blocks(s):
        for p in range(head, min(head + (1 << order), s.nr_pages)):
            seen[p] += 1
    for pcp in s.pcp:
        for idx, lst in enumerate(pcp.lists):
            size = 1 << pcp.order_of(idx)
            for head in lst:
                for p in range(head, min(head + size, s.nr_pages)):
                    seen[p] += 1
    for head, blk in s.allocated.items():
        for p in range(head, head + (1 << blk.order)):
            seen[p] += 1
    for head, order in s.inflight.items():
        for p in range(head, head + (1 << order)):
            seen[p] += 1
    out = []
    for pfn, n in enumerate(seen):
        want = 1 if s.page_present[pfn] else 0
        if n != want:
            out.append(
                Violation(
                    "CONSERVE",
                    f"pfn {pfn} is in {n} places, want {want} ({s.where(pfn)})",
                )
            )
    return out


def check_buddy(s: System) -> list[Violation]:
    out = []
    heads = 0
    for order, lists in enumerate(s.zone.free_list):
        listed = 0
        for mt, fl in enumerate(lists):
            listed += len(fl)
            for head in fl:
                heads += 1
                end = head + (1 << order)
                if head & ((1 << order) - 1) or end > s.nr_pages:
                    out.append(Violation("BUDDY", f"order-{order} block at pfn {head} misaligned"))
                elif s.buddy_order[head] != order or s.buddy_mt[head] != mt:
                    out.append(
                        Violation(
                            "BUDDY",
                            f"pfn {head} is on the order-{order} {mt_name(mt)} list but "
                            f"PageBuddy says order {s.buddy_order[head]}",
                        )
                    )
                elif not all(s.page_present[head:end]):
                    out.append(Violation("BUDDY", f"free block at pfn {head} is not present"))
        if listed != s.zone.nr_free[order]:
            out.append(
                Violation("BUDDY", f"nr_free[{order}] is {s.zone.nr_free[order]}, lists {listed}")
            )
    if sum(o >= 0 for o in s.buddy_order) != heads:
        out.append(Violation("BUDDY", "a PageBuddy page is on no freelist"))
    for cpu, pcp in enumerate(s.pcp):
        n = sum(len(lst) << pcp.order_of(idx) for idx, lst in enumerate(pcp.lists))
        if n != pcp.count and not pcp.locked():
            out.append(Violation("BUDDY", f"CPU{cpu} pcp count {pcp.count}, lists hold {n}"))
        for idx, lst in enumerate(pcp.lists):
            order = pcp.order_of(idx)
            for pfn in lst:
                mt = s.cached_mt[pfn]
                want = mt if mt < MIGRATE_PCPTYPES else MT.MOVABLE
                if pcp.pindex(want, order) != idx:
                    out.append(
                        Violation(
                            "BUDDY",
                            f"pfn {pfn} with cached {mt_name(mt)} is on CPU{cpu}'s "
                            f"{pcp.list_name(idx)} pcplist",
                        )
                    )
    return out


def check_merge_max(s: System) -> list[Violation]:
    limit = min(s.geo.pageblock_order, s.geo.max_order - 1)
    out = []
    for head, order, _mt in _free_blocks(s):
        if order < limit:
            buddy = head ^ (1 << order)
            if head < buddy < s.nr_pages and s.buddy_order[buddy] == order:
                out.append(
                    Violation("MERGE-MAX", f"order-{order} buddies at pfn {head} and {buddy}")
                )
    return out


def check_fl_type(s: System) -> list[Violation]:
    if s.isolation_passes:
        return []
    out = []
    for head, order, mt in _free_blocks(s):
        pbs = {
            s.pageblock_mt[s.pb(p)]
            for p in range(head, head + (1 << order), s.geo.pageblock_nr_pages)
        }
        for special in (MT.ISOLATE, MT.CMA):
            if (mt == special) != (pbs == {special}):
                out.append(
                    Violation(
                        "FL-TYPE",
                        f"free order-{order} block at pfn {head} is on the {mt_name(mt)} list, "
                        f"its pageblocks are {'/'.join(sorted(map(mt_name, pbs)))}",
                    )
                )
                break
    return out


def check_freecount(s: System) -> list[Violation]:
    free = cma = 0
    for _head, order, mt in _free_blocks(s):
        if mt != MT.ISOLATE:
            free += 1 << order
        if mt == MT.CMA:
            cma += 1 << order
    out = []
    if free + s.known_free_drift != s.zone.nr_free_pages:
        drift = f" + {s.known_free_drift} known undo-window drift" if s.known_free_drift else ""
        out.append(
            Violation(
                "FREECOUNT",
                f"NR_FREE_PAGES is {s.zone.nr_free_pages}, freelists hold {free}{drift}",
            )
        )
    if cma != s.zone.nr_free_cma_pages:
        out.append(
            Violation(
                "FREECOUNT",
                f"NR_FREE_CMA_PAGES is {s.zone.nr_free_cma_pages}, CMA lists hold {cma}",
            )
        )
    return out


def check_iso_count(s: System) -> list[Violation]:
    bp = s.geo.block_pages
    pbn = s.geo.pageblock_nr_pages
    online_iso = [
        pb
        for pb, mt in enumerate(s.pageblock_mt)
        if mt == MT.ISOLATE and s.block_online[pb * pbn // bp]
    ]
    n = s.zone.nr_isolate_pageblock
    if online_iso and n <= 0:
        return [
            Violation("ISO-COUNT", f"pageblocks {online_iso} are ISOLATE, nr_isolate_pageblock {n}")
        ]
    leaked = s.known_isolate_drift
    if s.mem_hotplug_lock.owner is None and n != len(online_iso) + leaked:
        known = f" + {leaked} leaked by known undo-window steals" if leaked else ""
        return [
            Violation(
                "ISO-COUNT",
                f"nr_isolate_pageblock {n}, online ISOLATE pageblocks {online_iso}{known}",
            )
        ]
    return []


def check_no_iso_on_pcp_type(s: System) -> list[Violation]:
    return [
        Violation("NO-ISO-ON-PCP-TYPE", f"pfn {pfn} on CPU{cpu}'s pcplist has cached mt ISOLATE")
        for cpu, pcp in enumerate(s.pcp)
        for lst in pcp.lists
        for pfn in lst
        if s.cached_mt[pfn] == MT.ISOLATE
    ]


def check_managed(s: System) -> list[Violation]:
    if s.mem_hotplug_lock.owner is not None:
        return []
    want = sum(s.page_present)
    z = s.zone
    if z.managed_pages != want or z.present_pages != want:
        return [
            Violation(
                "MANAGED",
                f"managed {z.managed_pages}, present {z.present_pages}, online pages {want}",
            )
        ]
    return []


def check_iso_rest(s: System) -> list[Violation]:
    """ISO-REST: with no task in flight, every online pageblock that no isolation user holds
    is back from ISOLATE: every path that isolates (offline's success, failure and signal
    paths, ``alloc_contig_range``, onlining from v5.10) unisolates what it does not offline."""
    if s.tasks():
        return []
    left = unheld_isolated(s)
    if not left:
        return []
    return [
        Violation(
            "ISO-REST",
            f"no task is running, but online pageblocks {left} are ISOLATE "
            "with no isolation user holding them",
        )
    ]


def check_deadlock(s: System) -> list[Violation]:
    if not s.stuck():
        return []
    waits = "; ".join(
        f"CPU{t.cpu} {t.op} in {t.wait.describe()}" for t in s.tasks() if t.wait is not None
    )
    return [Violation("DEADLOCK", f"every task is blocked: {waits}")]


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("HANG", "no atomic step loops forever", lambda s: _reported(s, "HANG")),
    Invariant(
        "LOCK-ORDER",
        "pcp_batch_high_lock is held exactly from zone_pcp_disable to zone_pcp_enable",
        lambda s: _reported(s, "LOCK-ORDER"),
    ),
    Invariant(
        "ISO-PCP",
        "once offline has isolated its range (and drained), no page of it is on a pcplist",
        check_iso_pcp,
        lambda p: not p.offline_retry_drain,
    ),
    Invariant(
        "ISO-NO-ALLOC",
        "no allocation returns a page of a range that offline holds isolated",
        check_iso_no_alloc,
        lambda p: p.pcp_disable_in_offline,
    ),
    Invariant(
        "PCP-OFF",
        "while pcplists are disabled, every online CPU's pcplist is empty with IRQs on",
        check_pcp_off,
        lambda p: p.has_pcp_disable,
    ),
    Invariant(
        "NO-ALLOC-OFFLINED",
        "offlined pages are on no list, and no allocation returns one",
        check_no_alloc_offlined,
    ),
    Invariant(
        "DRAIN-LOCKED",
        "each drain_pages_zone sees its pcp empty at a point its owner is outside its section "
        "(modern-kernels §8.3)",
        lambda s: _reported(s, "DRAIN-LOCKED"),
        lambda p: p.pcp_spinlock,
    ),
    Invariant(
        "PCP-UAF",
        "no task reads or writes a pageset after zone_pcp_reset freed it",
        lambda s: _reported(s, "PCP-UAF"),
    ),
    Invariant("DEADLOCK", "some task or drain work can always run", check_deadlock),
    Invariant(
        "PCP-HB",
        "outside updates, every CPU holds the §8.2 high/batch of the zone's managed pages",
        check_pcp_hb,
        lambda p: not p.freelist_hygiene,
    ),
    Invariant(
        "PCP-HB",
        "outside updates, every CPU holds the zone's (high_min, high_max, batch); an owner's "
        "clamped high lies between high_min and high_max (modern-kernels §8.2 (e))",
        check_pcp_hb_612,
        lambda p: p.freelist_hygiene,
    ),
    Invariant(
        "TYPE-WARN",
        "every freelist operation passes the head pageblock's type: no VM_WARN_ONCE 'page type "
        "is %lu, passed migratetype is %d' (modern-kernels §8.3)",
        lambda s: _reported(s, "TYPE-WARN"),
        lambda p: p.freelist_hygiene,
    ),
    Invariant(
        "PCP-BOUNDED",
        "alloc_factor <= CONFIG_PCP_BATCH_SCALE_MAX; decay_pcp_high frees at most "
        "batch << CONFIG_PCP_BATCH_SCALE_MAX (modern-kernels §8.3)",
        check_pcp_bounded,
        lambda p: p.freelist_hygiene,
    ),
    Invariant("CONSERVE", "every present page is in exactly one place", check_conserve),
    Invariant("BUDDY", "freelists and pcplists are well formed", check_buddy),
    Invariant("MERGE-MAX", "free buddies below pageblock order are merged", check_merge_max),
    Invariant(
        "FL-TYPE", "ISOLATE and CMA free blocks sit on their pageblocks' lists", check_fl_type
    ),
    Invariant(
        "FL-TYPE-STRICT",
        "at every zone->lock release each free block is on its head pageblock's type's list, "
        "and a block above pageblock_order covers pageblocks of one type (§8.2 (e))",
        check_fl_type_strict,
        lambda p: p.freelist_hygiene,
    ),
    Invariant(
        "FREECOUNT", "NR_FREE_PAGES and NR_FREE_CMA_PAGES match the freelists", check_freecount
    ),
    Invariant("ISO-COUNT", "nr_isolate_pageblock counts the ISOLATE pageblocks", check_iso_count),
    Invariant(
        "ISO-REST",
        "at rest (no task running), no online pageblock is left ISOLATE without a user",
        check_iso_rest,
    ),
    Invariant(
        "NO-ISO-ON-PCP-TYPE",
        "no pcp page has cached migratetype ISOLATE",
        check_no_iso_on_pcp_type,
        lambda p: not p.freelist_hygiene,
    ),
    Invariant("MANAGED", "managed and present pages are the online pages", check_managed),
)
INVARIANT_NAMES = tuple(dict.fromkeys(i.name for i in INVARIANTS)) + ("OFFLINE-TERM",)


def applicable(profile: Profile) -> tuple[Invariant, ...]:
    """The invariants ``profile``'s kernel promises."""
    return tuple(i for i in INVARIANTS if i.applies(profile))


def check(s: System, full: bool = False) -> list[Violation]:
    """Every applicable invariant's violations, most specific first. By default the costly
    invariants are checked incrementally (``pcpfuzz.incremental``: the same verdicts, at the
    cost of what changed since the last check of ``s``); ``full=True`` runs every check."""
    if not full:
        return incremental_check(s, applicable)
    out: list[Violation] = []
    for inv in applicable(s.profile):
        out.extend(inv.check(s))
    return out
