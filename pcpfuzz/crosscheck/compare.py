"""Turn one kernel's capture into named check lines: the kernel's value, the model's, and whether
they agree.

* ``watermarks`` (6.1): every populated zone's min/low/high (less the boost) at every snapshot,
  against the profile's ``per_zone_wmarks`` of the guest's ``min_free_kbytes`` and managed pages.
* ``high/batch``: every CPU's pair in every populated zone at every snapshot, against the
  profile's sizing function (:mod:`pcpfuzz.crosscheck.rules`) fed with the snapshot's numbers.
  On 6.12, whose ``pcp->high`` is auto-tuned, ``batch`` is compared exactly and ``high`` against
  the model's ``high_min``/``high_max`` (see :func:`high_reading`).
* ``outcome``: each write's result (0, EBUSY, EINVAL) against the model's ``online_pages`` /
  ``offline_pages`` replay or its fraction sysctl handler.
* ``recomputed``: which populated zones changed their pcp values at each step, against the zones
  the kernel's rules recompute whose sizing actually changes (on 6.12: batch alone).
* ``managed/present`` and ``pagesets``: zone accounting per online/offline against the model's
  replay, and pagesets appearing/disappearing when a zone becomes populated/empty.
* ``offline window``: the poller's readings against the model's ``offline_pages`` run on the
  kernel's profile (must fit) and on the other side of the 5.10 -> 5.11 change (must not).
"""

from collections.abc import Iterator

import attrs

from pcpfuzz.crosscheck import model, window
from pcpfuzz.crosscheck.guest import SCENARIO
from pcpfuzz.crosscheck.rules import Event, KernelRules, Sizing, step_event
from pcpfuzz.crosscheck.snapshot import Capture, Pair, Snapshot, Zone

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


def high_reading(
    high: int,
    want: Sizing,
    before: Sizing | None,
    last: int | None,
    floor_since_last: int | None = None,
) -> str | None:
    """How a 6.12 CPU's ``high`` reading is explained (modern-kernels §5.4), or None if it is not.

    ``pcp->high`` moves only inside the owner's pcp sections (``nr_pcp_high``, ``nr_pcp_alloc``
    clamp it into [``high_min``, ``high_max``] and tune it there) and in ``decay_pcp_high``
    (which lowers it toward ``high_min``, never below); ``zone_pcp_update`` does not write it.
    Between two snapshots these run under the sizing of the previous step (``before``) until the
    step recomputes it, then under the new one (``want``). So a reading lies in [``high_min``,
    ``high_max``] of ``want`` (``""``) or of ``before`` (``"before the step"``); or equals the
    CPU's last reading in this zone, no owner section since (``"last"``); or lies between the
    lowest ``high_min`` in force since ``last`` was read (``floor_since_last``: a CPU that was
    offline in between was not read for several steps) and ``last``, decayed from it
    (``"decayed"``); or is 0 with no last
    reading, a fresh pageset (``per_cpu_pages_init``'s zero) no owner section has touched yet
    (``"fresh"``)."""
    if want.high_min <= high <= want.high_max:
        return ""
    if before is not None and before.high_min <= high <= before.high_max:
        return "before the step"
    if last is None:
        return "fresh" if high == 0 else None
    if high == last:
        return "last"
    floor = min(want.high_min, before.high_min) if before is not None else want.high_min
    if floor_since_last is not None:
        floor = min(floor, floor_since_last)
    return "decayed" if floor <= high <= last else None


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

    def wmarks_recomputed(self, snap: Snapshot) -> bool:
        """Whether an online or offline at or before ``snap`` succeeded, hence ran
        ``init_per_zone_wmark_min``. Before that the watermarks are boot's, computed before
        ``free_initmem()`` added the kernel's init sections to the managed pages (and never
        recomputed for it), so they are not a function of the managed pages shown."""
        for cur in self.capture.snapshots[1 : self.capture.snapshots.index(snap) + 1]:
            hotplug = step_event(cur.label) in (Event.ONLINE, Event.OFFLINE)
            if hotplug and cur.write is not None and cur.write.outcome == "0":
                return True
        return False

    def low(self, snap: Snapshot, zone: Zone) -> int:
        """The low watermark the sizing splits: the model's (plus the boost) where the profile
        computes watermarks and they have been recomputed, else the kernel's."""
        if self.rules.watermarks is None or not self.wmarks_recomputed(snap):
            return zone.low
        return self.rules.watermarks(snap)[zone.name][1] + zone.boost

    def expected(self, snap: Snapshot, zone: Zone) -> Sizing:
        return self.rules.sizing(snap, zone, self.low(snap, zone))

    def view(self, pair: Pair) -> Pair | int:
        """What of a pageset is a function of the zone: the pair, or batch alone on 6.12."""
        return pair[1] if self.rules.high_autotuned else pair

    def all(self) -> Iterator[Check]:
        snaps = self.capture.snapshots
        yield self.check("scenario steps run", str(len(snaps) - 1), str(len(SCENARIO)))
        last: dict[tuple[str, int], int] = {}
        floors: dict[tuple[str, int], int] = {}
        for i, snap in enumerate(snaps):
            if self.rules.watermarks is not None and self.wmarks_recomputed(snap):
                yield self.watermarks(i, snap)
            if self.rules.high_autotuned:
                prev = snaps[i - 1] if i else None
                yield from self.sizing_autotuned(i, snap, prev, last, floors)
            else:
                yield from self.sizing(i, snap)
            if i:
                yield from self.step(i, snaps[i - 1], snap)

    def watermarks(self, i: int, snap: Snapshot) -> Check:
        assert self.rules.watermarks is not None
        marks = self.rules.watermarks(snap)
        populated = [z for z in snap.zones.values() if z.managed]

        def text(name: str, wmarks: tuple[int, int, int]) -> str:
            return f"{name} " + "/".join(map(str, wmarks))

        return self.check(
            f"{_step_name(i, snap)}: watermarks min/low/high",
            ", ".join(text(z.name, tuple(w - z.boost for w in z.watermarks)) for z in populated),
            ", ".join(text(z.name, marks[z.name]) for z in populated),
        )

    def sizing(self, i: int, snap: Snapshot) -> Iterator[Check]:
        for zone in snap.zones.values():
            if zone.populated:
                high, batch = self.expected(snap, zone).fixed
                yield self.check(
                    f"{_step_name(i, snap)}: {zone.name} high/batch",
                    _pairs(zone, snap.cpus),
                    " ".join(f"{high}/{batch}" for _ in snap.cpus),
                )

    def sizing_autotuned(
        self,
        i: int,
        snap: Snapshot,
        prev: Snapshot | None,
        last: dict[tuple[str, int], int],
        floors: dict[tuple[str, int], int],
    ) -> Iterator[Check]:
        """6.12: batch exactly; each CPU's high by :func:`high_reading`, ``last`` holding each
        (zone, CPU)'s previous reading since the zone's pagesets were set up and ``floors`` the
        lowest ``high_min`` in force since it."""
        for zone in snap.zones.values():
            if not zone.populated:
                for key in [k for k in last if k[0] == zone.name]:
                    del last[key]
                    floors.pop(key, None)
                continue
            want = self.expected(snap, zone)
            before = None
            if prev is not None and prev.zones[zone.name].populated:
                before = self.expected(prev, prev.zones[zone.name])
            name = f"{_step_name(i, snap)}: {zone.name}"
            pairs = [zone.pcp.get(cpu, (-1, -1)) for cpu in snap.cpus]
            yield self.check(
                f"{name} batch",
                " ".join(str(b) for _h, b in pairs),
                " ".join(str(want.batch) for _ in pairs),
            )
            for key in [k for k in last if k[0] == zone.name]:
                lows = [want.high_min] + ([before.high_min] if before is not None else [])
                floors[key] = min(floors.get(key, want.high_min), *lows)
            how = [
                high_reading(
                    h, want, before, last.get((zone.name, cpu)), floors.get((zone.name, cpu))
                )
                for cpu, (h, _b) in zip(snap.cpus, pairs, strict=True)
            ]
            yield self.check(
                f"{name} high in [high_min, high_max]",
                " ".join(
                    f"{h} ({reason})" if reason else str(h)
                    for (h, _b), reason in zip(pairs, how, strict=True)
                ),
                f"{want.high_min}..{want.high_max}",
                None not in how,
            )
            for cpu, (h, _b) in zip(snap.cpus, pairs, strict=True):
                last[(zone.name, cpu)] = h
                floors.pop((zone.name, cpu), None)

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

    def changed_zones(self, prev: Snapshot, cur: Snapshot) -> list[str]:
        """Zones populated before and after whose pcp values (``view``) changed on a CPU listed
        in both."""
        out = []
        for name, zone in cur.zones.items():
            before = prev.zones.get(name)
            if before is None or not (zone.populated and before.populated):
                continue
            common = set(zone.pcp) & set(before.pcp)
            if any(self.view(zone.pcp[cpu]) != self.view(before.pcp[cpu]) for cpu in common):
                out.append(name)
        return out

    def predicted_zones(
        self, i: int, event: Event, effective: bool, prev: Snapshot, cur: Snapshot
    ) -> list[str]:
        """Zones the kernel's rules recompute at this step whose sizing (``view``) changes."""
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
            want = self.view(self.expected(cur, zone).fixed)
            if any(self.view(before.pcp[cpu]) != want for cpu in set(zone.pcp) & set(before.pcp)):
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
        if self.rules.high_autotuned:
            kernel_seq = window.batch_view(kernel_seq)
        elif self.rules.wmark_recompute_updates_pcp:
            kernel_seq = window.drop_wmark_transients(kernel_seq)
        for profile, must_fit in (
            (self.rules.model_profile, True),
            (self.rules.other_profile, False),
        ):
            states = self.model_window(profile, i)
            seq = window.collapse(window.translate(states, before, after))
            if self.rules.high_autotuned:
                seq = window.batch_view(seq)
            fits = window.window_fits(kernel_seq, seq)
            label = f"model {profile}" if must_fit else f"model {profile} (must not fit)"
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
