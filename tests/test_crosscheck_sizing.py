"""The 6.1 pcp rule (``zone_highsize``) against values read from a real 6.1 kernel's zoneinfo
(reference: qemu-crosscheck §4.2), and the 5.10 rule against a real 5.10 kernel."""

import pytest

from pcpfuzz.mm.sizing import pageset_high_batch, pageset_high_batch_v61, zone_highsize


@pytest.mark.parametrize(
    ("managed", "low", "cpus", "fraction", "want"),
    [
        (3840, 221, 2, 0, (110, 1)),  # DMA at boot: low/2
        (242034, 13857, 2, 0, (6928, 63)),  # DMA32 at boot
        (32768, 2035, 2, 0, (1017, 7)),  # Normal, one block
        (32768, 1810, 2, 0, (905, 7)),
        (3840, 221, 2, 8, (240, 1)),  # fraction: 3840/8/2
        (32768, 1810, 2, 8, (2048, 7)),  # the fraction sets high only
        (242034, 5040, 1, 0, (5040, 63)),  # CPU 1 offline: divisor 1
        (3840, 6, 2, 0, (4, 1)),  # the 4*batch floor
    ],
)
def test_v61_rule(managed: int, low: int, cpus: int, fraction: int, want: tuple) -> None:
    assert pageset_high_batch_v61(managed, low, cpus, fraction) == want


def test_zone_highsize_floor_and_online_callback() -> None:
    assert zone_highsize(65536, 100, 15, 2, 0) == 60
    # Inside page_alloc_cpu_online the onlining CPU is not in the mask yet: 1 + 1.
    assert zone_highsize(242034, 5040, 63, 1 + 1, 0) == 2520


@pytest.mark.parametrize(
    ("managed", "fraction", "want"),
    [
        (3977, 0, (0, 1)),
        (226402, 0, (378, 63)),
        (32768, 0, (42, 7)),
        (65536, 0, (90, 15)),
        (3977, 8, (497, 96)),
        (226402, 8, (28300, 96)),
        (32768, 8, (4096, 96)),
    ],
)
def test_v510_rule_on_real_values(managed: int, fraction: int, want: tuple) -> None:
    assert pageset_high_batch(managed, fraction) == want
