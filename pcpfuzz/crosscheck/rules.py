"""Each checked kernel's pcp rules: which sizing function gives a zone's (high, batch), which
events recompute which zones, and which model profiles its ``offline_pages`` must (and must not)
match. (Write outcomes come from the model itself, see ``model``.)

The sizing comes from :mod:`pcpfuzz.mm.sizing`, fed with the snapshot's real managed pages (and,
for 6.1, its low watermark and online CPU count).
"""

import enum

import attrs

from pcpfuzz.crosscheck.snapshot import Pair, Zone
from pcpfuzz.mm.sizing import pageset_high_batch, pageset_high_batch_v61


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
class KernelRules:
    """The rules of one checked kernel."""

    name: str
    model_profile: str
    """The model profile whose ``offline_pages`` this kernel must match."""
    other_profile: str
    """The model profile whose ``offline_pages`` this kernel must not match (the other side of
    the 5.10 -> 5.11 change)."""
    wmark_recompute_updates_pcp: bool
    """6.1: every ``setup_per_zone_wmarks()`` (hence every online/offline, through
    ``init_per_zone_wmark_min()``) ends with ``zone_pcp_update()`` on all zones, because high
    follows the low watermark. 5.10: online/offline update only their own zone. Where high
    follows the watermarks, the offline window also tolerates the short-lived highs of
    ``init_per_zone_wmark_min()``'s first watermark pass (see ``window``)."""
    cpu_hotplug_updates_pcp: bool
    """6.1: ``page_alloc_cpu_online/dead()`` call ``zone_pcp_update()`` on every populated zone
    (high is split across the node's CPUs). 5.10: no CPU term, no update."""

    def pcp(self, zone: Zone, fraction: int, nr_cpus: int) -> Pair:
        """The (high, batch) every CPU of ``zone`` should hold."""
        if self.wmark_recompute_updates_pcp:
            return pageset_high_batch_v61(zone.managed, zone.low, nr_cpus, fraction)
        return pageset_high_batch(zone.managed, fraction)

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
    wmark_recompute_updates_pcp=False,
    cpu_hotplug_updates_pcp=False,
)
V6_1 = KernelRules(
    name="6.1",
    model_profile="v6.1",
    other_profile="v5.10",
    wmark_recompute_updates_pcp=True,
    cpu_hotplug_updates_pcp=True,
)
RULES: dict[str, KernelRules] = {r.name: r for r in (V5_10, V6_1)}
