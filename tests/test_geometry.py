"""Geometry validation: a machine the kernel's boot code cannot build is rejected up front."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcpfuzz.cli import main
from pcpfuzz.geometry import Geometry

ENTRY = Path(__file__).parent.parent / "corpus" / "v5.9-nofix" / "ISO-PCP-8a6c1bf173.json"


@pytest.mark.parametrize("cma", [(1,), (1, 6), (0, 1, 2), (2, 3, 5)])
def test_a_cma_area_off_the_max_order_boundary_is_rejected(cma):
    with pytest.raises(ValueError, match="^cma_pageblocks: area .* not aligned to 2 pageblocks"):
        Geometry(cma_pageblocks=cma)


@pytest.mark.parametrize("cma", [(), (0, 1), (6, 7), (0, 1, 2, 3), tuple(range(10))])
def test_aligned_cma_areas_are_accepted(cma):
    assert Geometry(cma_pageblocks=cma).cma_pageblocks == cma


def test_the_alignment_follows_the_larger_of_max_order_and_pageblock():
    # pageblock_order == MAX_ORDER - 1: a single pageblock is a whole MAX_ORDER block.
    assert Geometry(pageblock_order=3, cma_pageblocks=(1,)).cma_pageblocks == (1,)


def test_replay_of_an_entry_with_a_misaligned_cma_area_exits_2_naming_the_field(tmp_path):
    data = json.loads(ENTRY.read_text())
    data["geometry"]["cma_pageblocks"] = [1, 6]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(main, ["replay", str(path)])
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line]
    assert len(errors) == 1 and "cma_pageblocks" in errors[0], result.output
    assert "Traceback" not in result.output
