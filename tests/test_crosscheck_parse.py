"""The guest-output parser, on real captures from Debian's 5.10, 6.1 and 6.12 kernels under QEMU."""

from pathlib import Path

import pytest

from pcpfuzz.crosscheck.guest import SCENARIO
from pcpfuzz.crosscheck.snapshot import (
    Capture,
    ParseError,
    parse_capture,
    parse_cpu_list,
    parse_watch_run,
    parse_write,
)

DATA = Path(__file__).parent / "data" / "crosscheck"


def capture(kernel: str) -> Capture:
    return parse_capture((DATA / f"{kernel}.data").read_text())


@pytest.mark.parametrize("kernel", ["5.10", "6.1", "6.12"])
def test_capture_has_every_step(kernel: str) -> None:
    c = capture(kernel)
    assert c.release.startswith(kernel + ".")
    assert c.block_pages == 32768
    assert c.dimm == ("memory32", "memory33")
    assert [s.label for s in c.snapshots] == ["boot", *SCENARIO]
    assert c.done_uptime is not None


def test_510_values() -> None:
    c = capture("5.10")
    assert c.fraction_sysctl == "percpu_pagelist_fraction"
    boot = c.snapshots[0]
    assert boot.cpus == (0, 1)
    assert boot.zones["DMA"].pcp == {0: (0, 1), 1: (0, 1)}
    assert boot.zones["DMA32"].pcp[1] == (378, 63)
    assert not boot.zones["Movable"].populated
    assert boot.zones["Movable"].pcp == {}
    assert boot.blocks["memory32"] == ("offline", "Normal Movable")
    two = c.snapshots[2]
    assert two.zones["Movable"].managed == 65536
    assert two.zones["Movable"].pcp[0] == (90, 15)
    assert two.blocks["memory33"] == ("online", "Movable")


def test_612_zoneinfo() -> None:
    # 6.12 prints count, high (the auto-tuned pcp->high) and batch per CPU, not high_min or
    # high_max; a boost line per zone; ZONE_MOVABLE's min is its own clamp (32), even empty.
    c = capture("6.12")
    assert c.release == "6.12.118+deb13-amd64"
    assert c.fraction_sysctl == "percpu_pagelist_high_fraction"
    boot = c.snapshots[0]
    assert (boot.min_free_kbytes, boot.watermark_scale_factor) == (45056, 10)
    dma32 = boot.zones["DMA32"]
    assert (dma32.managed, dma32.boost, dma32.watermarks) == (227160, 0, (11075, 13843, 16611))
    assert dma32.pcp == {0: (6921, 63), 1: (7112, 63)}  # two CPUs, two tuned highs
    assert boot.zones["DMA"].pcp == {0: (0, 1), 1: (0, 1)}
    movable = boot.zones["Movable"]
    assert not movable.populated and movable.pcp == {} and movable.watermarks == (32, 32, 32)
    normal = c.snapshots[5].zones["Normal"]  # online_kernel:d1
    assert normal.pcp == {0: (1094, 7), 1: (0, 7)}  # CPU 1 has not touched its new pageset
    assert c.snapshots[10].cpus == (0,) and list(c.snapshots[10].zones["DMA32"].pcp) == [0]
    assert c.watch is not None
    assert c.watch.sequence[1] == ((4096, 1), (431, 1))  # batch 1, highs left as they were


def test_zone_lines() -> None:
    # 5.10 prints no boost line: 0. A line the guest does not write is an error.
    assert capture("5.10").snapshots[0].zones["DMA32"].boost == 0
    text = (
        (DATA / "6.12.data").read_text().replace("        boost    0\n", "        promo    9\n", 1)
    )
    with pytest.raises(ParseError, match="unexpected zoneinfo line in zone DMA"):
        parse_capture(text)
    text = (DATA / "6.12.data").read_text().replace("@@ MIN_FREE_KBYTES 45056\n", "", 1)
    with pytest.raises(ParseError, match="snapshot boot: no 'MIN_FREE_KBYTES' line"):
        parse_capture(text)


def test_write_outcomes() -> None:
    c = capture("6.1")
    by_label = {s.label: s for s in c.snapshots}
    assert by_label["frac=7"].write is not None
    assert by_label["frac=7"].write.outcome == "EINVAL"
    assert by_label["frac=7"].fraction == 8
    assert by_label["online_kernel:d1"].write.outcome == "0"
    assert by_label["cpu1_off"].cpus == (0,)
    assert c.snapshots[0].write is None


def test_watch_runs() -> None:
    six = capture("6.1").watch
    assert six is not None
    assert six.sequence[0] == ((1564, 15), (1564, 15))
    assert ((0, 1), (0, 1)) in six.sequence
    assert six.sequence[-1] == ((880, 7), (880, 7))
    assert six.before < six.after
    five = capture("5.10").watch
    assert five is not None
    assert five.sequence == (((90, 15), (90, 15)), ((42, 7), (42, 7)))


def test_cpu_list() -> None:
    assert parse_cpu_list("0-1") == (0, 1)
    assert parse_cpu_list("0") == (0,)
    assert parse_cpu_list("0,2-3") == (0, 2, 3)
    assert parse_cpu_list("") == ()


def test_write_line_names_errno() -> None:
    assert parse_write("/x 7 rc=1 err=sh: write error: Invalid argument").outcome == "EINVAL"
    busy = parse_write("/x offline rc=1 err=sh: write error: Device or resource busy")
    assert busy.outcome == "EBUSY"
    assert parse_write("/x 1 rc=0 err=").outcome == "0"
    assert parse_write("/x 1 rc=1 err=odd").outcome == "error(odd)"
    with pytest.raises(ParseError):
        parse_write("garbage")


def test_watch_line() -> None:
    assert parse_watch_run("3 0/1 0/1 .") == (3, ((0, 1), (0, 1)))
    assert parse_watch_run("2 .") == (2, ())
    with pytest.raises(ParseError):
        parse_watch_run("2 0/1")


def test_bad_output_raises() -> None:
    with pytest.raises(ParseError):
        parse_capture("")
    with pytest.raises(ParseError):
        parse_capture("@@ ERROR unknown step x\n")
    text = (DATA / "6.1.data").read_text().replace("        managed  3840\n", "", 1)
    with pytest.raises(ParseError, match="zone DMA"):
        parse_capture(text)
