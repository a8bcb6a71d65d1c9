"""The real cross-check: boots Debian's 5.10, 6.1 and 6.12 kernels under QEMU (about 40 s) when
``scripts/crosscheck-setup.sh`` has fetched them; skipped otherwise."""

import json

import pytest
from click.testing import CliRunner

from pcpfuzz.crosscheck.cli import crosscheck_command
from pcpfuzz.crosscheck.tools import KERNELS, Missing, cache_dir, find_image, find_tools


def _missing() -> str | None:
    try:
        find_tools()
        for kernel in KERNELS:
            find_image(kernel, cache_dir())
    except Missing as missing:
        return str(missing)
    return None


@pytest.mark.skipif(_missing() is not None, reason=f"real cross-check not set up: {_missing()}")
def test_real_kernels_match_the_model(tmp_path) -> None:
    result = CliRunner().invoke(crosscheck_command, ["--json", "--workdir", str(tmp_path)])
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    bad = [x for x in lines if x["result"] != "match"]
    assert result.exit_code == 0, bad
    assert {x["kernel_version"] for x in lines} == set(KERNELS)
    assert any("offline window" in x["check"] for x in lines)
