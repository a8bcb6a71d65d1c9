"""Profiles: kernel versions, each patch of the series and known bugs, as data (spec §0, §18).

Model code asks a profile's switches, never its name. A profile is the previous rung plus a
change, so the ladder ``v5.10`` -> ``v5.10+p1`` ... ``v5.10+p7`` -> ``v5.11`` reads as the series;
each zoo profile is a version plus one known bug (``BASES`` names what each is built on).
"""

import attrs


@attrs.frozen
class Profile:
    """A kernel's behaviour, as switches. Each switch names where the spec describes it."""

    name: str
    description: str
    # Drains around isolation (spec §9.5, §10).
    isolate_drains: bool = True
    """``set_migratetype_isolate`` ends with ``drain_all_pages(zone)`` (dropped by patch 6)."""
    offline_retry_drain: bool = True
    """``offline_pages`` drains when ``test_pages_isolated`` fails (Tatashin's 9683182612)."""
    isolate_user_drain: bool = False
    """Patch 6: ``offline_pages`` and ``alloc_contig_range`` drain once after isolating."""
    pcp_disable_in_offline: bool = False
    """Patch 7: ``offline_pages`` isolates between ``zone_pcp_disable`` and ``zone_pcp_enable``."""
    forced_drain: bool = True
    """``zone_pcp_disable`` drains every online CPU without reading counts (spec §7.3)."""
    enable_on_fail: bool = True
    """Offline's failure paths call ``zone_pcp_enable`` when they called ``zone_pcp_disable``."""
    hwpoison_user: bool = False
    """The 5.11 tree's ``get_hwpoison_page`` is a second ``zone_pcp_disable`` user (spec §13)."""
    # pcp high/batch updates (spec §8.3-§8.5).
    pageset_update_failsafe: bool = True
    """``pageset_update`` writes batch:=1, high, batch (v5.10); patch 4 writes batch then high."""
    compute_once_per_zone: bool = False
    """Patch 2: high/batch are computed once per zone, not once per CPU."""
    pageset_init_boot_values: bool = False
    """Patch 3: ``pageset_init`` sets high 0 / batch 1 itself (before, batch stays 0 until set)."""
    cached_high_batch: bool = False
    """Patch 5: ``zone->pageset_high/batch`` with the early return when unchanged."""
    online_pcp_update: bool = True
    """``online_pages`` calls ``zone_pcp_update`` also when it populated the zone; before
    de1193f0be66 only when the zone was already populated (the first block kept 0/1)."""
    # Buddy and hotplug (spec §0.4, §3, §9.2).
    online_as_isolated: bool = True
    """v5.10: onlined pageblocks start ISOLATE and are unisolated after the pages are freed."""
    fpi_to_tail: bool = True
    """v5.10: onlining, unisolation and ``move_to_free_list`` put blocks at the freelist tail."""
    unisolate_skip_max_order: bool = False
    """2484be0f88dc: the re-free merge trick of unisolation skips MAX_ORDER-1 blocks."""
    bulk_clamp: bool = True
    """88e8ac11d2ea: ``free_pcppages_bulk`` frees at most ``pcp->count`` pages."""
    # v6.x (modern-kernels.md).
    pcp_spinlock: bool = False
    """v6.1: the v6 page allocator (``pcpfuzz.mm6``): a ``pcp->lock`` per (CPU, zone) with owner
    trylocks and remote drains, multi-order pcplists, sizing from the low watermark."""
    freelist_hygiene: bool = False
    """v6.12: the 6.12 page allocator (``pcpfuzz.mm612``): no cached migratetype, per-freelist
    accounting with the type check, merge-time retyping, ``split_large_buddy``, pcp sections
    with IRQs on, ``pcp->high`` auto-tuned by its owner and decayed by the vmstat worker."""

    @property
    def has_pcp_disable(self) -> bool:
        """Whether any code path of this kernel calls ``zone_pcp_disable``."""
        return self.pcp_disable_in_offline or self.hwpoison_user

    def switches(self) -> dict[str, bool]:
        """The behaviour switches, by name."""
        return {a.name: getattr(self, a.name) for a in attrs.fields(Profile)[2:]}


BASES: dict[str, str] = {}
"""Each derived profile's name -> the name of the profile it changes (its ladder predecessor,
or the version a zoo bug is put into)."""


def _rung(base: Profile, name: str, description: str, **changes: bool) -> Profile:
    BASES[name] = base.name
    return attrs.evolve(base, name=name, description=description, **changes)


V5_10 = Profile(
    "v5.10",
    "v5.10: drains inside isolation and, on a failed isolation test, in the offline retry loop",
)
V5_9_NOFIX = _rung(
    V5_10,
    "v5.9-nofix",
    "v5.9 without 9683182612 (no retry-loop drain): a stale free can strand a page, offline loops",
    offline_retry_drain=False,
    online_as_isolated=False,
    fpi_to_tail=False,
)
P1 = _rung(
    V5_10,
    "v5.10+p1",
    "p1 7115ac6ef0b2: clean up pageset high and batch update. A refactor with no switch: the "
    "model already computes (high, batch) before one pageset_update, as the patch does",
)
P2 = _rung(
    P1,
    "v5.10+p2",
    "p2 0a8b4f1d5bf4: calculate pageset high and batch once per zone",
    compute_once_per_zone=True,
)
P3 = _rung(
    P2,
    "v5.10+p3",
    "p3 69a8396a2647: remove setup_pageset(); pageset_init sets high 0 / batch 1",
    pageset_init_boot_values=True,
)
P4 = _rung(
    P3,
    "v5.10+p4",
    "p4 5c3ad2eb7104: simplify pageset_update() to WRITE_ONCE(batch), WRITE_ONCE(high)",
    pageset_update_failsafe=False,
)
P5 = _rung(
    P4,
    "v5.10+p5",
    "p5 952eaf815925: cache pageset high and batch in struct zone, skip unchanged updates",
    cached_high_batch=True,
)
P6 = _rung(
    P5,
    "v5.10+p6",
    "p6 7612921f2376: move draining pcplists from set_migratetype_isolate to isolation users",
    isolate_drains=False,
    isolate_user_drain=True,
)
P7 = _rung(
    P6,
    "v5.10+p7",
    "p7 ec6e8c7e0314: disable pcplists during memory offline (zone_pcp_disable, forced drain); "
    "offline drops both of its drains",
    offline_retry_drain=False,
    pcp_disable_in_offline=True,
)
V5_11 = _rung(
    P7,
    "v5.11",
    "v5.11: the series plus 2484be0f88dc (isolation max order) and the hwpoison pcp-disable user",
    unisolate_skip_max_order=True,
    hwpoison_user=True,
)
V5_8_NOBULKCLAMP = _rung(
    V5_10,
    "v5.8-nobulkclamp",
    "v5.10 without 88e8ac11d2ea (v5.9): free_pcppages_bulk frees batch pages, not "
    "min(count, batch); a free that reads a raised batch searches empty lists forever",
    bulk_clamp=False,
)
V5_8_ONLINE_NOPCPUPDATE = _rung(
    V5_10,
    "v5.8-online-nopcpupdate",
    "v5.10 without de1193f0be66 (v5.9): onlining the first block of an empty zone skips "
    "zone_pcp_update, leaving high/batch at their values for 0 managed pages",
    online_pcp_update=False,
)
V5_11_UNFORCED_DISABLE = _rung(
    V5_11,
    "v5.11-unforced-disable",
    "v5.11 with ec6e8c7e0314's forced drain made non-forced (spec §15.3 mutant): "
    "zone_pcp_disable skips CPUs whose count it reads as 0",
    forced_drain=False,
)
V5_11_NOENABLE_ONFAIL = _rung(
    V5_11,
    "v5.11-noenable-onfail",
    "v5.11 with offline's signal and isolation-failure paths missing ec6e8c7e0314's "
    "zone_pcp_enable (mutant): pcp_batch_high_lock stays held",
    enable_on_fail=False,
)

V6_1 = _rung(
    V5_11,
    "v6.1",
    "v6.1.0: pcp->lock with owner trylock and remote drains, multi-order pcplists (orders 0-3 "
    "and the THP list), sizing from the low watermark, offline inside zone_pcp_disable",
    pcp_spinlock=True,
)

V6_12 = _rung(
    V6_1,
    "v6.12",
    "v6.12.0: v6.1 plus IRQs on in pcp sections, no cached migratetype, per-freelist "
    "accounting with the type check, split_large_buddy, pcp->high auto-tuned between "
    "high_min and high_max and decayed by vmstat",
    freelist_hygiene=True,
)

VERSIONS = (V5_9_NOFIX, V5_10, V5_11)
MODERN = (V6_1, V6_12)
"""The modern kernels (modern-kernels.md), each a rung built on the one before."""
CAMPAIGN = (*VERSIONS, *MODERN)
"""The profiles the default ``pcpfuzz fuzz`` campaign runs."""
LADDER = (V5_10, P1, P2, P3, P4, P5, P6, P7, V5_11)
ZOO = (V5_8_NOBULKCLAMP, V5_8_ONLINE_NOPCPUPDATE, V5_11_UNFORCED_DISABLE, V5_11_NOENABLE_ONFAIL)
PROFILES: dict[str, Profile] = {p.name: p for p in (V5_9_NOFIX, *LADDER, *ZOO, *MODERN)}


class UnknownProfile(KeyError):
    """A profile name that is not in ``PROFILES``."""

    def __str__(self) -> str:
        return f"unknown profile {self.args[0]!r} (known: {', '.join(PROFILES)})"


def base_of(profile: Profile) -> Profile | None:
    """The profile ``profile`` is built on (None for ``v5.10``, the root)."""
    name = BASES.get(profile.name)
    return None if name is None else PROFILES[name]


def changes(profile: Profile) -> dict[str, bool]:
    """The switches ``profile`` sets differently from ``base_of(profile)`` (all of them, for
    the root)."""
    base = base_of(profile)
    if base is None:
        return profile.switches()
    old = base.switches()
    return {k: v for k, v in profile.switches().items() if old[k] != v}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; raises ``UnknownProfile`` naming the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(name) from None
