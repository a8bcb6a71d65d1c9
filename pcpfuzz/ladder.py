"""The patch ladder and the bug zoo as one table (issue 7): run an engine with a budget on every
rung of the series (``LADDER``: v5.10, each patch, v5.11) and on every known-bug profile
(``ZOO``), and say what each found.

A rung must find nothing; a zoo profile must find its bug, as one of the invariants in
``EXPECTED``. ``DEFAULT_GEOMETRY_FOR`` holds the geometry each profile is fuzzed on, so that
``pcpfuzz fuzz`` and ``pcpfuzz ladder`` agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import attrs

from pcpfuzz.actions import Action
from pcpfuzz.engines.base import Budget, Campaign, EngineFn, Failure
from pcpfuzz.geometry import DEFAULT_GEOMETRY, Geometry
from pcpfuzz.profiles import LADDER, MODERN, PROFILES, VERSIONS, ZOO, Profile, base_of, changes
from pcpfuzz.system import NotEnabled
from pcpfuzz.trace import execute

CAMPAIGN_GEOMETRY = Geometry(cma_pageblocks=(6, 7))
"""The fixed kernels' geometry (v5.10, every rung, v5.11): the default zone with one CMA area of
MAX_ORDER_NR_PAGES (pageblocks 6-7, in memory block 1), so that the fuzzers reach the CMA
branches of ``__rmqueue``, NR_FREE_CMA_PAGES, ``has_unmovable_pages`` (block 1 can never be
offlined: its isolation fails at pageblock 6 and undoes 4-5, as in the kernel) and FL-TYPE's
CMA clause."""

DEFAULT_GEOMETRY_FOR: Mapping[str, Geometry] = MappingProxyType(
    {
        # The race of spec §15.1 on the default zone: the README's walkthrough entry. It is
        # found in a few examples, so a CMA area would add no search.
        "v5.9-nofix": DEFAULT_GEOMETRY,
        # 88e8ac11d2ea's own scenario: one block online of four, default sizing at scale 384,
        # so the zone boots with high 0 / batch 1 and onlining a second block raises them to
        # (18, 3) (any sysctl value raises batch too), under a free that already read high 0.
        "v5.8-nobulkclamp": Geometry(online_blocks=1, fraction=0, sizing_scale=384),
        # One block online of two: offlining it empties the zone, onlining a block fills it.
        "v5.8-online-nopcpupdate": Geometry(nr_blocks=2, online_blocks=1),
        # Three CPUs: one allocates (reads the old batch, IRQs off), one offlines, and the
        # third can hold a free in flight in the block being offlined, so that the offline
        # keeps retrying with pcplists disabled while the allocation refills. Default sizing
        # at scale 256 (high 18, batch 3). Measured: 'random' finds it within 600 examples
        # for 5 of 6 seeds here, for 1 of 6 on three CPUs with fraction 8, 0 of 6 on two.
        "v5.11-unforced-disable": Geometry(nr_cpus=3, fraction=0, sizing_scale=256),
        # v6.1: high from the low watermark (pages_min 40: low 50, high 25 on two CPUs),
        # batch 3 (scale 256), pageblock_order 4 > 3 so the THP list is in use, and
        # MAX_ORDER - 1 = 5 > pageblock_order so a free block can straddle the boundary of a
        # pageblock-aligned isolation (isolate_single_pageblock's split_free_page).
        "v6.1": Geometry(
            nr_blocks=2,
            block_pages=32,
            max_order=6,
            pageblock_order=4,
            fraction=0,
            sizing_scale=256,
            pages_min=40,
        ),
        # v6.12: x86's shape at model scale: the THP order is pageblock_order (4), the
        # largest order one above it (5), so free buddies can span two pageblocks
        # (split_large_buddy, move_freepages_block_isolate) and every merge above
        # pageblock_order joins exactly two pageblocks, as on x86. 128 pages, batch 1,
        # pages_min 4: low watermark 5, high_min 4, high_max 128 / 8 / 2 = 8 (auto-tuning on).
        "v6.12": Geometry(
            nr_blocks=4, block_pages=32, max_order=6, pageblock_order=4, fraction=0, pages_min=4
        ),
    }
)
"""The geometry to fuzz a profile on, where ``CAMPAIGN_GEOMETRY`` is not the right one."""

EXPECTED: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "v5.8-nobulkclamp": ("HANG",),
        "v5.8-online-nopcpupdate": ("PCP-HB",),
        # A page kept on a disabled pcplist: PCP-OFF; ISO-PCP or ISO-NO-ALLOC when it lies in
        # the isolated range (checked first); at rest the offline cannot finish.
        "v5.11-unforced-disable": ("PCP-OFF", "ISO-PCP", "ISO-NO-ALLOC", "OFFLINE-TERM"),
        "v5.11-noenable-onfail": ("LOCK-ORDER", "DEADLOCK"),
    }
)
"""For each zoo profile, the invariants its bug breaks (the first is the one expected first).
A ladder rung expects none."""


KNOWN_FINDINGS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # docs/v6.1.md: drain_pages_zone's lockless count read; the emptied zone's cache.
        "v6.1": ("PCP-HB", "DRAIN-LOCKED", "PCP-OFF"),
        # docs/v6.12.md: the same cache (high_min, high_max, batch) after zone_pcp_reset; an
        # allocation's refill returns its page after an isolation it straddled.
        "v6.12": ("PCP-HB", "ISO-NO-ALLOC"),
    }
)
"""For each modern kernel, the invariants of the findings explained against its source and
kept in ``corpus/<profile>/``: a modern row is as expected when it finds nothing or one of
these; anything else is new (a kernel issue or a model error to explain)."""


def geometry_for(name: str) -> Geometry:
    """The geometry profile ``name`` is fuzzed on."""
    return DEFAULT_GEOMETRY_FOR.get(name, CAMPAIGN_GEOMETRY)


def expected(name: str) -> tuple[str, ...]:
    """The invariants a run on profile ``name`` should find (empty: it should find nothing);
    for a modern kernel, the invariants of its known findings (``KNOWN_FINDINGS``)."""
    return EXPECTED.get(name) or KNOWN_FINDINGS.get(name, ())


def must_pass(profile: Profile) -> tuple[str, ...]:
    """The kernels on which a counterexample found on ``profile`` must pass: for a bug profile
    (a zoo bug, or a version older than the one it is built on: v5.9-nofix), the version it
    was taken from (which has the fix); for a rung or a version, none (a finding there is
    new)."""
    base = base_of(profile)
    if base is None or profile in LADDER:
        return ()
    older = (
        profile in VERSIONS and base in VERSIONS and VERSIONS.index(profile) < VERSIONS.index(base)
    )
    return (base.name,) if profile in ZOO or older else ()


def kernels_to_pass(
    profile: Profile, geometry: Geometry, actions: Sequence[Action]
) -> tuple[str, ...]:
    """``must_pass(profile)`` without the kernels on which ``actions`` cannot run at all: a
    fix can make the interleaving impossible (v5.11's forced drain waits for the
    allocation's IRQ-off section that the unforced drain skips), and the corpus replays only
    what can run. The one rule of ``pcpfuzz fuzz --corpus`` and ``pcpfuzz ladder --corpus``."""
    out = []
    for name in must_pass(profile):
        try:
            execute(PROFILES[name], geometry, actions)
        except NotEnabled:
            continue
        out.append(name)
    return tuple(out)


def fixed_kernels(failure: Failure) -> tuple[str, ...]:
    """``kernels_to_pass`` for an engine's failure."""
    return kernels_to_pass(failure.profile, failure.geometry, failure.actions)


def adds(profile: Profile) -> str:
    """What ``profile`` adds to the profile it is built on, as its changed switches."""
    if base_of(profile) is None:
        return "the base: drains in isolation and in offline's retry loop"
    diff = changes(profile)
    if not diff:
        return "nothing observable (a refactor)"
    return ", ".join(f"{k}={v}" for k, v in diff.items())


@attrs.frozen
class Row:
    """One line of the ladder table."""

    profile: str
    kind: str
    """``rung``, ``zoo`` or ``modern`` (v6.1, v6.12)."""
    adds: str
    expected: tuple[str, ...]
    examples: int
    model_steps: int
    seconds: float
    invariant: str | None = None
    """The invariant the shrunk counterexample breaks; None when nothing was found."""
    shrunk_length: int | None = None
    original_length: int | None = None
    message: str | None = None
    corpus_entry: str | None = None

    @property
    def found(self) -> bool:
        return self.invariant is not None

    @property
    def ok(self) -> bool:
        """A rung found nothing; a zoo profile found one of its expected invariants; a modern
        kernel found nothing or one of its known findings."""
        if self.kind == "modern":
            return not self.found or self.invariant in self.expected
        return self.invariant in self.expected if self.expected else not self.found

    def as_dict(self) -> dict[str, object]:
        """The row as JSON-ready data, with ``found`` and ``ok``."""
        out = attrs.asdict(self)
        out["expected"] = list(self.expected)
        out["found"] = self.found
        out["ok"] = self.ok
        return out


def profiles() -> Iterator[tuple[str, Profile]]:
    """Every rung, then every zoo profile, then the modern kernels, with their kind."""
    yield from (("rung", p) for p in LADDER)
    yield from (("zoo", p) for p in ZOO)
    yield from (("modern", p) for p in MODERN)


Saver = Callable[[Campaign, tuple[str, ...]], Path | None]
"""Saves a campaign's failure to the corpus with the given must-pass profiles (None: it
could not be saved, and said why)."""


def run_profile(
    kind: str,
    profile: Profile,
    engine: EngineFn,
    seed: int,
    budget: Budget,
    save: Saver | None = None,
) -> Row:
    """Run ``engine`` on ``profile`` (on its ``geometry_for``) and make its row; ``save`` (when
    given) records the shrunk failure in the corpus."""
    c = engine(profile, geometry_for(profile.name), seed, budget)
    f = c.failure
    entry = save(c, fixed_kernels(f)) if save is not None and f is not None else None
    return Row(
        profile=profile.name,
        kind=kind,
        adds=adds(profile),
        expected=expected(profile.name),
        examples=c.examples,
        model_steps=c.model_steps,
        seconds=round(c.seconds, 3),
        invariant=None if f is None else f.violation.invariant,
        shrunk_length=None if f is None else len(f.actions),
        original_length=c.original_length,
        message=None if f is None else f.violation.message,
        corpus_entry=None if entry is None else str(entry),
    )


def run_ladder(
    engine: EngineFn,
    seed: int,
    budget: Budget,
    save: Saver | None = None,
) -> Iterator[Row]:
    """``run_profile`` on every rung and zoo profile, in ladder order, one row at a time."""
    for kind, profile in profiles():
        yield run_profile(kind, profile, engine, seed, budget, save)
