"""The model boots on every profile with every invariant holding."""

import pytest

from pcpfuzz.geometry import Geometry
from pcpfuzz.invariants import check
from pcpfuzz.profiles import PROFILES, get_profile
from pcpfuzz.system import System


@pytest.mark.parametrize("name", list(PROFILES))
def test_boot_state_holds_every_invariant(name: str) -> None:
    s = System(get_profile(name), Geometry())
    assert check(s) == []
    assert s.zone.nr_free_pages == s.nr_pages
