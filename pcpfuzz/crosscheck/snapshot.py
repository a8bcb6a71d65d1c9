"""Parse the guest's output (see ``guest.INIT_SCRIPT``) into snapshots, write outcomes and the
offline watcher's run lengths.
"""

import re

import attrs

Pair = tuple[int, int]
"""A pageset's (high, batch)."""

_ERRNO_TEXT = {
    "Invalid argument": "EINVAL",
    "Device or resource busy": "EBUSY",
    "Operation not permitted": "EPERM",
    "No such device": "ENODEV",
}
_ZONE_FIELDS = ("free", "min", "low", "high", "spanned", "present", "managed")
_BOOST = "boost"
"""Printed from 5.12 on (not by 5.10); 0 where absent."""


class ParseError(ValueError):
    """The guest's output is not in the expected form."""


@attrs.frozen
class Zone:
    """One zone of ``/proc/zoneinfo``: sizes, watermarks and each listed CPU's pageset."""

    name: str
    managed: int
    present: int
    spanned: int
    boost: int
    watermarks: tuple[int, int, int]
    """``min_wmark_pages``, ``low_wmark_pages``, ``high_wmark_pages`` (each with the boost)."""
    pcp: dict[int, Pair]
    """(high, batch) by CPU; empty when the zone has no pagesets (unpopulated)."""

    @property
    def populated(self) -> bool:
        return self.present > 0

    @property
    def low(self) -> int:
        """``low_wmark_pages(zone)``, which ``zone_highsize`` splits."""
        return self.watermarks[1]


@attrs.frozen
class Write:
    """The outcome of one sysfs or sysctl write: ``0`` or an errno name."""

    path: str
    value: str
    outcome: str


@attrs.frozen
class Snapshot:
    """The state after one step (or at boot): CPUs, fraction, DIMM blocks and zones."""

    label: str
    uptime: float
    cpus: tuple[int, ...]
    fraction: int
    min_free_kbytes: int
    watermark_scale_factor: int
    blocks: dict[str, tuple[str, str]]
    """DIMM block name -> (state, valid_zones)."""
    zones: dict[str, Zone]
    write: Write | None
    """The step's write, if the step wrote something."""


@attrs.frozen
class Watch:
    """What the poller on CPU 1 saw while a Movable block was offlined: run lengths in time order.

    Each run is (polls, per-CPU (high, batch) of the Movable zone); an empty tuple is a read with
    no pagesets listed. ``before``/``after`` count the polls when the write started and returned.
    """

    runs: tuple[tuple[int, tuple[Pair, ...]], ...]
    before: int
    after: int

    @property
    def sequence(self) -> tuple[tuple[Pair, ...], ...]:
        """The distinct readings in time order (run lengths dropped)."""
        return tuple(state for _count, state in self.runs)


@attrs.frozen
class Capture:
    """One boot's parsed output."""

    release: str
    block_pages: int
    dimm: tuple[str, ...]
    fraction_sysctl: str
    snapshots: tuple[Snapshot, ...]
    watch: Watch | None
    done_uptime: float | None


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """A kernel CPU list such as ``0-1,3`` as a tuple of CPU numbers."""
    cpus: list[int] = []
    for part in text.split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return tuple(cpus)


def parse_write(rest: str) -> Write:
    """``PATH VALUE rc=N err=TEXT`` -> :class:`Write`, naming the errno from the error text."""
    m = re.fullmatch(r"(\S+) (\S+) rc=(\d+) err=(.*)", rest)
    if m is None:
        raise ParseError(f"bad WRITE line: {rest!r}")
    path, value, rc, err = m.groups()
    if rc == "0":
        return Write(path, value, "0")
    named = [errno for text, errno in _ERRNO_TEXT.items() if text in err]
    return Write(path, value, named[0] if named else f"error({err.strip()})")


def _parse_pair(token: str) -> Pair:
    high, batch = token.split("/")
    return int(high), int(batch)


def parse_watch_run(rest: str) -> tuple[int, tuple[Pair, ...]]:
    """``COUNT high/batch high/batch ... .`` -> (count, pairs)."""
    tokens = rest.split()
    if not tokens or tokens[-1] != ".":
        raise ParseError(f"bad WATCH line: {rest!r}")
    return int(tokens[0]), tuple(_parse_pair(t) for t in tokens[1:-1])


class _ZoneBuilder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.fields: dict[str, int] = {}
        self.pcp: dict[int, list[int]] = {}
        self.cpu: int | None = None

    def line(self, line: str) -> None:
        words = line.split()
        if words[0] == "cpu:":
            self.cpu = int(words[1])
            self.pcp[self.cpu] = []
        elif words[0] in ("high:", "batch:") and self.cpu is not None:
            self.pcp[self.cpu].append(int(words[1]))
        elif words[:2] == ["pages", "free"]:
            self.fields["free"] = int(words[2])
        elif words[0] in (*_ZONE_FIELDS, _BOOST):
            self.fields[words[0]] = int(words[1])
        else:
            raise ParseError(f"unexpected zoneinfo line in zone {self.name}: {line!r}")

    def build(self) -> Zone:
        missing = [f for f in _ZONE_FIELDS if f not in self.fields]
        bad = [cpu for cpu, values in self.pcp.items() if len(values) != 2]
        if missing or bad:
            raise ParseError(f"zone {self.name}: missing {missing}, incomplete pagesets {bad}")
        return Zone(
            name=self.name,
            managed=self.fields["managed"],
            present=self.fields["present"],
            spanned=self.fields["spanned"],
            boost=self.fields.get(_BOOST, 0),
            watermarks=(self.fields["min"], self.fields["low"], self.fields["high"]),
            pcp={cpu: (v[0], v[1]) for cpu, v in self.pcp.items()},
        )


def _parse_snapshot(label: str, lines: list[str], write: Write | None) -> Snapshot:
    meta: dict[str, str] = {}
    blocks: dict[str, tuple[str, str]] = {}
    zones: dict[str, Zone] = {}
    zone: _ZoneBuilder | None = None
    for line in lines:
        if line.startswith("@@ BLOCK "):
            name, state, *valid = line.split()[2:]
            blocks[name] = (state, " ".join(valid))
        elif line.startswith("@@ "):
            key, _, value = line[3:].partition(" ")
            meta[key] = value
        elif line.startswith("Node "):
            if zone is not None:
                zones[zone.name] = zone.build()
            zone = _ZoneBuilder(line.split()[-1])
        elif zone is not None:
            zone.line(line)
        else:
            raise ParseError(f"snapshot {label}: zoneinfo line before any zone: {line!r}")
    if zone is not None:
        zones[zone.name] = zone.build()
    try:
        return _snapshot(label, meta, blocks, zones, write)
    except KeyError as missing:
        raise ParseError(f"snapshot {label}: no {missing} line") from None


def _snapshot(
    label: str,
    meta: dict[str, str],
    blocks: dict[str, tuple[str, str]],
    zones: dict[str, Zone],
    write: Write | None,
) -> Snapshot:
    return Snapshot(
        label=label,
        uptime=float(meta["UPTIME"]),
        cpus=parse_cpu_list(meta["CPUS"]),
        fraction=int(meta["FRAC"]),
        min_free_kbytes=int(meta["MIN_FREE_KBYTES"]),
        watermark_scale_factor=int(meta["WATERMARK_SCALE_FACTOR"]),
        blocks=blocks,
        zones=zones,
        write=write,
    )


def parse_capture(text: str) -> Capture:
    """Parse one boot's ttyS1 output."""
    head: dict[str, str] = {}
    snapshots: list[Snapshot] = []
    runs: list[tuple[int, tuple[Pair, ...]]] = []
    polls: dict[str, int] = {}
    write: Write | None = None
    snap_label: str | None = None
    snap_lines: list[str] = []
    done: float | None = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if snap_label is not None:
            if line == "@@ END":
                snapshots.append(_parse_snapshot(snap_label, snap_lines, write))
                snap_label, snap_lines, write = None, [], None
            else:
                snap_lines.append(line)
            continue
        if not line.startswith("@@ "):
            continue
        key, _, rest = line[3:].partition(" ")
        if key == "SNAP":
            snap_label = rest
        elif key == "WRITE":
            write = parse_write(rest)
        elif key == "WATCH":
            runs.append(parse_watch_run(rest))
        elif key == "POLLS":
            polls = {k: int(v) for k, v in (kv.split("=") for kv in rest.split())}
        elif key == "DONE":
            done = float(rest)
        elif key == "ERROR":
            raise ParseError(f"guest error: {rest}")
        elif key != "STEP":
            head[key] = rest
    try:
        return Capture(
            release=head["KERNEL"],
            block_pages=int(head["BLOCK_PAGES"]),
            dimm=tuple(head["DIMM"].split()),
            fraction_sysctl=head["FRAC_SYSCTL"],
            snapshots=tuple(snapshots),
            watch=Watch(tuple(runs), polls["before"], polls["after"]) if runs else None,
            done_uptime=done,
        )
    except KeyError as missing:
        raise ParseError(f"no {missing} line in the guest output") from None
