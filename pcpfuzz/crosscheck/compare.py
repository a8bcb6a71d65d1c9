"""Turn one kernel's capture into named check lines: the kernel's value, the model's, and whether
they agree.

* ``high/batch``: every CPU's pair in every populated zone at every snapshot, against the sizing
  function of :mod:`pcpfuzz.crosscheck.rules` fed with the snapshot's managed pages (and low
  watermark and online CPU count for 6.1).
* ``outcome``: each write's result (0, EBUSY, EINVAL) against the model's ``online_pages`` /
  ``offline_pages`` replay or its fraction sysctl handler.
* ``recomputed``: which populated zones changed their pcp values at each step, against the zones
  the kernel's rules recompute whose sizing actually changes.
* ``managed/present`` and ``pagesets``: zone accounting per online/offline against the model's
  replay, and pagesets appearing/disappearing when a zone becomes populated/empty.
* ``offline window``: the poller's readings against the model's ``offline_pages`` run on the
  kernel's profile (must fit) and on the other side of the 5.10 -> 5.11 change (must not).
"""

from collections.abc import Iterator

import attrs

from pcpfuzz.crosscheck import model, window
from pcpfuzz.crosscheck.guest import SCENARIO
from pcpfuzz.crosscheck.rules import Event, KernelRules, step_event
from pcpfuzz.crosscheck.snapshot import Capture, Snapshot, Zone

WATCHED_ZONE = "Movable"


@attrs.frozen
class Check:
    """One named comparison."""

    kernel_version: str
    name: str
    kernel: str
    model: str
    ok: bool


@attrs.frozen
class _Hotplug:
    """A hotplug step: which DIMM block (0 or 1), which zone, onlined or offlined."""

    index: int
    block: int
    zone: str
    online: bool


def _pairs(zone: Zone, cpus: tuple[int, ...]) -> str:
    return " ".join(f"{h}/{b}" for h, b in (zone.pcp.get(cpu, (-1, -1)) for cpu in cpus))


def _cpus_text(cpus: tuple[int, ...] | list[int]) -> str:
    return "cpus " + ",".join(map(str, cpus)) if cpus else "none"


def _step_name(index: int, snap: Snapshot) -> str:
    return f"[{index}] {snap.label}"


def _hotplugs(capture: Capture) -> list[_Hotplug]:
    """The scenario's online/offline steps, with the zone each one changed."""
    out = []
    snaps = capture.snapshots
    for i in range(1, len(snaps)):
        event = step_event(snaps[i].label)
        if event not in (Event.ONLINE, Event.OFFLINE):
            continue
        block = int(snaps[i].label.rsplit(":", 1)[1].removeprefix("d"))
        online = event is Event.ONLINE
        blocks = (snaps[i] if online else snaps[i - 1]).blocks
        out.append(_Hotplug(i, block, blocks[capture.dimm[block]][1], online))
    return out


def _replay(
    capture: Capture, profile: str, hotplugs: list[_Hotplug]
) -> dict[int, model.HotplugResult]:
    """The model's replay of each zone's online/offline calls, by step index."""
    by_zone: dict[str, list[_Hotplug]] = {}
    for h in hotplugs:
        by_zone.setdefault(h.zone, []).append(h)
    out: dict[int, model.HotplugResult] = {}
    for steps in by_zone.values():
        first = capture.snapshots[steps[0].index - 1]
        results = model.hotplug_replay(
            profile,
            [(h.online, h.block) for h in steps],
            capture.block_pages,
            len(first.cpus),
            first.fraction,
        )
        out.update({h.index: r for h, r in zip(steps, results, strict=True)})
    return out


class _Comparer:
    def __init__(self, capture: Capture, rules: KernelRules) -> None:
        self.capture = capture
        self.rules = rules
        self.hotplugs = {h.index: h for h in _hotplugs(capture)}
        self.replay = _replay(capture, rules.model_profile, list(self.hotplugs.values()))

    def check(self, name: str, kernel: str, model_value: str, ok: bool | None = None) -> Check:
        same = kernel == model_value if ok is None else ok
        return Check(self.rules.name, name, kernel, model_value, same)

    def expected(self, snap: Snapshot, zone: Zone) -> tuple[int, int]:
        return self.rules.pcp(zone, snap.fraction, len(snap.cpus))

    def all(self) -> Iterator[Check]:
        snaps = self.capture.snapshots
        yield self.check("scenario steps run", str(len(snaps) - 1), str(len(SCENARIO)))
        for i, snap in enumerate(snaps):
            yield from self.sizing(i, snap)
            if i:
                yield from self.step(i, snaps[i - 1], snap)

    def sizing(self, i: int, snap: Snapshot) -> Iterator[Check]:
        for zone in snap.zones.values():
            if zone.populated:
                want = self.expected(snap, zone)
                yield self.check(
                    f"{_step_name(i, snap)}: {zone.name} high/batch",
                    _pairs(zone, snap.cpus),
                    " ".join(f"{want[0]}/{want[1]}" for _ in snap.cpus),
                )

    def step(self, i: int, prev: Snapshot, cur: Snapshot) -> Iterator[Check]:
        event = step_event(cur.label)
        name = _step_name(i, cur)
        outcome, effective = self.model_outcome(i, event, prev, cur)
        kernel_outcome = cur.write.outcome if cur.write else "no write"
        if event is Event.FRACTION:
            kernel_outcome += f", fraction {cur.fraction}"
        yield self.check(f"{name}: outcome", kernel_outcome, outcome)
        yield self.check(
            f"{name}: zones recomputed",
            ",".join(self.changed_zones(prev, cur)) or "none",
            ",".join(self.predicted_zones(i, event, effective, prev, cur)) or "none",
        )
        if i in self.hotplugs:
            yield from self.accounting(i, prev, cur)
        if i in self.hotplugs and self.capture.watch and cur.label.startswith("watch_offline"):
            yield from self.offline_window(i, prev, cur)

    def model_outcome(
        self, i: int, event: Event, prev: Snapshot, cur: Snapshot
    ) -> tuple[str, bool]:
        """The model's result for the step, and whether the step takes effect."""
        if i in self.replay:
            outcome = self.replay[i].outcome
            return outcome, outcome == "0"
        if event is Event.FRACTION:
            value = int(cur.label.removeprefix("frac="))
            outcome, after = model.fraction_write(
                self.rules.model_profile, prev.fraction, value, len(prev.cpus)
            )
            return f"{outcome}, fraction {after}", outcome == "0" and after != prev.fraction
        return "0", True  # CPU hotplug: page_alloc_cpu_dead / cpu online cannot fail here

    @staticmethod
    def changed_zones(prev: Snapshot, cur: Snapshot) -> list[str]:
        """Zones populated before and after whose pcp values changed on a CPU listed in both."""
        out = []
        for name, zone in cur.zones.items():
            before = prev.zones.get(name)
            if before is None or not (zone.populated and before.populated):
                continue
            common = set(zone.pcp) & set(before.pcp)
            if any(zone.pcp[cpu] != before.pcp[cpu] for cpu in common):
                out.append(name)
        return out

    def predicted_zones(
        self, i: int, event: Event, effective: bool, prev: Snapshot, cur: Snapshot
    ) -> list[str]:
        """Zones the kernel's rules recompute at this step whose sizing changes."""
        if not effective:
            return []
        if self.rules.recomputes_all(event):
            scope = set(cur.zones)
        elif i in self.hotplugs:
            scope = {self.hotplugs[i].zone}
        else:
            scope = set()
        out = []
        for name, zone in cur.zones.items():
            before = prev.zones.get(name)
            if name not in scope or before is None or not (zone.populated and before.populated):
                continue
            want = self.expected(cur, zone)
            if any(before.pcp[cpu] != want for cpu in set(zone.pcp) & set(before.pcp)):
                out.append(name)
        return out

    def accounting(self, i: int, prev: Snapshot, cur: Snapshot) -> Iterator[Check]:
        hot, result = self.hotplugs[i], self.replay[i]
        name = _step_name(i, cur)
        deltas = []
        for zname, zone in cur.zones.items():
            before = prev.zones[zname]
            dm, dp = zone.managed - before.managed, zone.present - before.present
            if dm or dp:
                deltas.append(f"{zname} managed {dm:+d} present {dp:+d}")
        yield self.check(
            f"{name}: managed/present",
            "; ".join(deltas) or "none",
            f"{hot.zone} managed {result.managed_delta:+d} present {result.present_delta:+d}",
        )
        before, after = prev.zones[hot.zone], cur.zones[hot.zone]
        if before.populated != after.populated:
            was = _cpus_text(sorted(before.pcp))
            yield self.check(
                f"{name}: {hot.zone} pagesets",
                f"{_cpus_text(sorted(after.pcp))} (were {was})",
                f"{_cpus_text(cur.cpus) if result.has_pagesets else 'none'} (were {was})",
            )

    def offline_window(self, i: int, prev: Snapshot, cur: Snapshot) -> Iterator[Check]:
        watch = self.capture.watch
        assert watch is not None
        cpus = sorted(prev.zones[WATCHED_ZONE].pcp)
        before = tuple(prev.zones[WATCHED_ZONE].pcp[c] for c in cpus)
        after = tuple(cur.zones[WATCHED_ZONE].pcp.get(c, (-1, -1)) for c in cpus)
        kernel_seq = window.collapse(watch.sequence)
        kernel_text = window.describe(kernel_seq, [n for n, _s in watch.runs])
        if self.rules.wmark_recompute_updates_pcp:
            kernel_seq = window.drop_wmark_transients(kernel_seq)
        for profile, must_fit in (
            (self.rules.model_profile, True),
            (self.rules.other_profile, False),
        ):
            states = self.model_window(profile, i)
            seq = window.collapse(window.translate(states, before, after))
            fits = window.window_fits(kernel_seq, seq)
            used = model.resolve_profile(profile).name
            label = f"model {used}" if must_fit else f"model {used} (must not fit)"
            yield self.check(
                f"{_step_name(i, cur)}: offline window vs {label}",
                kernel_text,
                window.describe(seq),
                fits == must_fit,
            )

    def model_window(self, profile: str, i: int) -> tuple[window.State, ...]:
        if profile == self.rules.model_profile:
            return self.replay[i].states
        return _replay(self.capture, profile, list(self.hotplugs.values()))[i].states


def compare(capture: Capture, rules: KernelRules) -> list[Check]:
    """Every check line for one kernel's capture."""
    return list(_Comparer(capture, rules).all())
