"""The v6.1 profile's watermark and sizing functions (``pcpfuzz.mm6.pageset``) on numbers read from
the real 6.1 kernel's ``/proc/zoneinfo`` (tests/data/crosscheck/6.1.data), and the model's
System-level functions giving the same values as those pure functions."""

from pathlib import Path

import pytest

from pcpfuzz.crosscheck.snapshot import parse_capture
from pcpfuzz.geometry import Geometry
from pcpfuzz.mm6.pageset import (
    min_free_pages,
    pcp_high_batch,
    per_zone_wmarks,
    zone_high_batch,
    zone_highsize,
)
from pcpfuzz.profiles import get_profile
from pcpfuzz.system import System

DATA = Path(__file__).parent / "data" / "crosscheck"


def test_watermarks_of_the_real_61_machine() -> None:
    # After online_movable:d0: min_free_kbytes 45056, DMA 3840, DMA32 225458, Movable 32768
    # managed pages; the kernel shows these (min, low, high) (boost 0).
    snap = parse_capture((DATA / "6.1.data").read_text()).snapshots[1]
    assert snap.label == "online_movable:d0"
    zones = [z for z in snap.zones.values() if z.managed]
    assert [z.managed for z in zones] == [3840, 225458, 32768]
    assert snap.min_free_kbytes == 45056 and min_free_pages(45056) == 11264
    want = [z.watermarks for z in zones]
    assert per_zone_wmarks(11264, [z.managed for z in zones]) == want
    assert want == [(165, 206, 247), (9690, 12112, 14534), (1408, 1760, 2112)]


@pytest.mark.parametrize(
    ("managed", "low", "cpus", "fraction", "want"),
    [
        (3840, 237, 2, 0, (118, 1)),  # DMA: low / 2, batch 1 below 8192 pages
        (225458, 14008, 2, 0, (7004, 63)),  # DMA32
        (32768, 2035, 2, 0, (1017, 7)),  # Normal, one block
        (225458, 14008, 1, 0, (14008, 63)),  # CPU 1 offline: divisor 1
        (3840, 237, 2, 8, (240, 1)),  # fraction: 3840 / 8 / 2
        (225458, 12457, 1, 8, (28182, 63)),  # fraction, CPU 1 offline
        (32768, 1810, 1, 8, (4096, 7)),  # the fraction sets high only
        (3840, 6, 2, 0, (4, 1)),  # the 4 * batch floor
    ],
)
def test_pcp_high_batch_on_real_values(
    managed: int, low: int, cpus: int, fraction: int, want: tuple[int, int]
) -> None:
    assert pcp_high_batch(managed, low, cpus, fraction) == want


def test_zone_highsize_floor_and_online_callback() -> None:
    assert zone_highsize(65536, 100, 15, 2, 0) == 60
    # Inside page_alloc_cpu_online the onlining CPU is not in the mask yet: 1 + 1.
    assert zone_highsize(225458, 14008, 63, 1 + 1, 0) == 7004


@pytest.mark.parametrize("pages_min", [None, 0, 5, 40])
@pytest.mark.parametrize("fraction", [0, 8, 16])
def test_the_model_applies_the_pure_functions(pages_min: int | None, fraction: int) -> None:
    geo = Geometry(nr_cpus=3, fraction=fraction, sizing_scale=512, pages_min=pages_min)
    s = System(get_profile("v6.1"), geo)
    managed = s.zone.managed_pages
    knob = managed // 32 if pages_min is None else pages_min
    assert [s.zone.watermark] == per_zone_wmarks(knob, [managed])
    want = pcp_high_batch(managed, s.zone.watermark[1], 3, fraction, sizing_scale=512)
    assert zone_high_batch(s) == want
    assert [(p.high, p.batch) for p in s.pcp] == [want] * 3
    # Inside the CPU-online callback: one more CPU to split across.
    assert zone_high_batch(s, 1) == pcp_high_batch(
        managed, s.zone.watermark[1], 4, fraction, sizing_scale=512
    )
