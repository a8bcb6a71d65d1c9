"""Each checked kernel's pcp rules: which profile code gives a zone's pcp sizes, which events
recompute which zones, and which model profiles its ``offline_pages`` must (and must not) match.
(Write outcomes come from the model itself, see ``model``.)

The sizes are the profiles' own pure functions, fed with the snapshot's real numbers:

* 5.10: ``pageset_high_batch`` (:mod:`pcpfuzz.mm.sizing`, what ``mm.pageset.zone_high_batch``
  applies) of the managed pages and the fraction;
* 6.1: the ``v6.1`` profile's ``per_zone_wmarks`` and ``pcp_high_batch``
  (:mod:`pcpfuzz.mm6.pageset`, what its ``__setup_per_zone_wmarks`` and ``zone_high_batch``
  apply): every zone's watermarks from the guest's ``min_free_kbytes``, ``watermark_scale_factor``
  and managed pages, then high from the computed low watermark, the online CPUs and the fraction
  (at boot, from the kernel's own low watermark: see ``compare``);
* 6.12: ``pcp_high_min_max_batch`` (:mod:`pcpfuzz.mm612.sizing`) of the managed pages, the low
  watermark ``/proc/zoneinfo`` shows, the online CPUs and the fraction.
"""

import enum
from collections.abc import Callable

import attrs

from pcpfuzz.crosscheck.snapshot import Snapshot, Zone
from pcpfuzz.mm.sizing import pageset_high_batch
from pcpfuzz.mm6.pageset import Watermarks, min_free_pages, pcp_high_batch, per_zone_wmarks
from pcpfuzz.mm612.sizing import pcp_high_min_max_batch


class Event(enum.Enum):
    """What a scenario step does, as far as the pcp rules care."""

    ONLINE = "online"
    OFFLINE = "offline"
    FRACTION = "fraction"
    CPU_HOTPLUG = "cpu hotplug"


def step_event(step: str) -> Event:
    """The event of a scenario step (see ``guest.SCENARIO``)."""
    if step.startswith("online_"):
        return Event.ONLINE
    if step.startswith(("offline:", "watch_offline:")):
        return Event.OFFLINE
    if step.startswith("frac="):
        return Event.FRACTION
    if step.startswith("cpu"):
        return Event.CPU_HOTPLUG
    raise ValueError(f"unknown step {step!r}")


@attrs.frozen
class Sizing:
    """A zone's pcp sizes by the model: batch, and the bounds of high (equal where high is not
    auto-tuned, that is before 6.12)."""

    high_min: int
    high_max: int
    batch: int

    @property
    def fixed(self) -> tuple[int, int]:
        """The (high, batch) pair of a kernel without auto-tuning."""
        return self.high_min, self.batch


def sizing_v510(snap: Snapshot, zone: Zone, _low: int) -> Sizing:
    """5.10: ``pageset_high_batch(managed, fraction)``."""
    high, batch = pageset_high_batch(zone.managed, snap.fraction)
    return Sizing(high, high, batch)


def watermarks_v61(snap: Snapshot) -> dict[str, Watermarks]:
    """6.1: every zone's (min, low, high) by ``per_zone_wmarks`` from the guest's numbers."""
    zones = list(snap.zones.values())
    marks = per_zone_wmarks(
        min_free_pages(snap.min_free_kbytes),
        [z.managed for z in zones],
        snap.watermark_scale_factor,
    )
    return {z.name: m for z, m in zip(zones, marks, strict=True)}


def sizing_v61(snap: Snapshot, zone: Zone, low: int) -> Sizing:
    """6.1: ``pcp_high_batch`` of the managed pages and the low watermark."""
    high, batch = pcp_high_batch(zone.managed, low, len(snap.cpus), snap.fraction)
    return Sizing(high, high, batch)


def sizing_v612(snap: Snapshot, zone: Zone, low: int) -> Sizing:
    """6.12: ``pcp_high_min_max_batch`` of the managed pages and the low watermark."""
    return Sizing(*pcp_high_min_max_batch(zone.managed, low, len(snap.cpus), snap.fraction))


@attrs.frozen
class KernelRules:
    """The rules of one checked kernel."""

    name: str
    model_profile: str
    """The model profile whose ``offline_pages`` this kernel must match."""
    other_profile: str
    """The model profile whose ``offline_pages`` this kernel must not match (the other side of
    the 5.10 -> 5.11 change)."""
    sizing: Callable[[Snapshot, Zone, int], Sizing]
    """The sizes of a zone of the snapshot, given its low watermark."""
    watermarks: Callable[[Snapshot], dict[str, Watermarks]] | None
    """The model's watermarks of every zone, where the profile computes them (the low
    watermark given to ``sizing`` is then the computed one, plus the boost, once an online or
    offline has recomputed them: see ``compare``); elsewhere ``/proc/zoneinfo``'s."""
    wmark_recompute_updates_pcp: bool
    """6.1 on: every ``setup_per_zone_wmarks()`` (hence every online/offline, through
    ``init_per_zone_wmark_min()``) ends with ``zone_pcp_update()`` on all zones, because high
    follows the low watermark. 5.10: online/offline update only their own zone. Where high
    follows the watermarks, the offline window also tolerates the short-lived highs of
    ``init_per_zone_wmark_min()``'s first watermark pass (see ``window``)."""
    cpu_hotplug_updates_pcp: bool
    """6.1 on: ``page_alloc_cpu_online/dead()`` call ``zone_pcp_update()`` on every populated
    zone (high is split across the node's CPUs). 5.10: no CPU term, no update."""
    high_autotuned: bool = False
    """6.12: ``pcp->high`` is owner state, tuned between ``high_min`` and ``high_max`` (which
    ``/proc/zoneinfo`` does not print); only batch is a function of the zone."""

    def recomputes_all(self, event: Event) -> bool:
        """Whether ``event`` (if it takes effect) recomputes every populated zone."""
        if event is Event.CPU_HOTPLUG:
            return self.cpu_hotplug_updates_pcp
        if event in (Event.ONLINE, Event.OFFLINE):
            return self.wmark_recompute_updates_pcp
        return True


V5_10 = KernelRules(
    name="5.10",
    model_profile="v5.10",
    other_profile="v5.11",
    sizing=sizing_v510,
    watermarks=None,
    wmark_recompute_updates_pcp=False,
    cpu_hotplug_updates_pcp=False,
)
V6_1 = KernelRules(
    name="6.1",
    model_profile="v6.1",
    other_profile="v5.10",
    sizing=sizing_v61,
    watermarks=watermarks_v61,
    wmark_recompute_updates_pcp=True,
    cpu_hotplug_updates_pcp=True,
)
V6_12 = attrs.evolve(
    V6_1,
    name="6.12",
    model_profile="v6.12",
    sizing=sizing_v612,
    watermarks=None,
    high_autotuned=True,
)
"""6.12 recomputes on the same events as 6.1; its sizes are the triple, its high auto-tuned."""
RULES: dict[str, KernelRules] = {r.name: r for r in (V5_10, V6_1, V6_12)}
