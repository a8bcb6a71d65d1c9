"""Boot one kernel under QEMU (TCG) with a cold-plugged pc-dimm and collect the guest's output.

``-cpu qemu64`` and ``cryptomgr.notests`` avoid a rare TCG soft lockup seen with ``-cpu max`` in
the crypto self-tests; a boot that still hangs (or dies before its last step) is retried once.
``memhp_default_state=offline`` keeps the DIMM's blocks offline at boot on kernels built to online
hot-added memory themselves (Debian's 6.12: ``CONFIG_MHP_DEFAULT_ONLINE_TYPE_ONLINE_AUTO``).
"""

import contextlib
import subprocess
import time
from pathlib import Path

import attrs

from pcpfuzz.crosscheck.tools import Tools

BOOT_TIMEOUT_S = 150.0
BOOT_RETRIES = 1
DONE_MARK = "@@ DONE"


@attrs.frozen
class Boot:
    """One kernel's run: the guest's data (ttyS1), its console (ttyS0), time and attempts."""

    data: str
    console: str
    seconds: float
    attempts: int

    @property
    def completed(self) -> bool:
        """Whether the guest got through every step."""
        return DONE_MARK in self.data


def qemu_command(
    tools: Tools, image: Path, initrd: Path, steps: tuple[str, ...], workdir: Path
) -> list[str]:
    """The QEMU command line: 2 vCPUs, 1 GiB, and a 256 MiB pc-dimm (two 128 MiB blocks)."""
    append = " ".join(
        (
            "console=ttyS0 loglevel=4 panic=-1 cryptomgr.notests memhp_default_state=offline",
            "xc.steps=" + ",".join(steps),
        )
    )
    return [
        str(tools.qemu),
        *("-accel", "tcg,thread=multi", "-cpu", "qemu64", "-smp", "2"),
        *("-m", "1G,slots=2,maxmem=2G"),
        *("-object", "memory-backend-ram,id=m1,size=256M", "-device", "pc-dimm,id=d1,memdev=m1"),
        *("-display", "none", "-monitor", "none", "-no-reboot", "-nic", "none"),
        *("-kernel", str(image), "-initrd", str(initrd)),
        *("-serial", f"file:{workdir / 'console.log'}", "-serial", f"file:{workdir / 'data.log'}"),
        *("-append", append),
    ]


def _boot_once(command: list[str], workdir: Path, timeout: float) -> tuple[str, str]:
    for name in ("console.log", "data.log"):
        (workdir / name).unlink(missing_ok=True)
    # On a timeout run() kills QEMU; the missing DONE line in the data then tells the hang.
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    return _read(workdir / "data.log"), _read(workdir / "console.log")


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def boot(
    tools: Tools,
    image: Path,
    initrd: Path,
    steps: tuple[str, ...],
    workdir: Path,
    timeout: float = BOOT_TIMEOUT_S,
) -> Boot:
    """Boot ``image`` with ``initrd`` to run ``steps``; retry once if the guest does not finish."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = qemu_command(tools, image, initrd, steps, workdir)
    start = time.monotonic()
    for attempt in range(1, BOOT_RETRIES + 2):
        attempt_start = time.monotonic()
        data, console = _boot_once(command, workdir, timeout)
        result = Boot(data, console, time.monotonic() - attempt_start, attempt)
        if result.completed:
            return result
    return attrs.evolve(result, seconds=time.monotonic() - start)
