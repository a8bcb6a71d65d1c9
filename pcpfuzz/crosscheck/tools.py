"""Find what a cross-check run needs: QEMU, a static busybox and the kernel images.

Nothing is installed here: ``scripts/crosscheck-setup.sh`` fetches it all. A missing piece raises
:class:`Missing` with one line naming it and the setup command.
"""

import os
import shutil
import struct
from pathlib import Path

import attrs

SETUP_COMMAND = "bash scripts/crosscheck-setup.sh"
KERNELS: tuple[str, ...] = ("5.10", "6.1", "6.12")
_PT_INTERP = 3


class Missing(Exception):
    """A tool or image the cross-check needs is not there."""


@attrs.frozen
class Tools:
    """The host programs a run uses."""

    qemu: Path
    busybox: Path


def cache_dir() -> Path:
    """``${PCPFUZZ_CACHE:-~/.cache/pcpfuzz}/crosscheck``, where the setup script puts the images."""
    root = os.environ.get("PCPFUZZ_CACHE") or str(Path.home() / ".cache" / "pcpfuzz")
    return Path(root) / "crosscheck"


def is_static_elf(path: Path) -> bool:
    """Whether ``path`` is a little-endian 64-bit ELF with no ``PT_INTERP`` (a static binary)."""
    data = path.read_bytes()
    if data[:6] != b"\x7fELF\x02\x01":
        return False
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = (struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum))
    return _PT_INTERP not in types


def find_tools() -> Tools:
    """QEMU and a static busybox from ``PATH``."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise Missing(
            f"qemu-system-x86_64 not found (package qemu-system-x86); run {SETUP_COMMAND}"
        )
    busybox = shutil.which("busybox")
    if busybox is None or not is_static_elf(Path(busybox)):
        raise Missing(f"no static busybox on PATH (package busybox-static); run {SETUP_COMMAND}")
    return Tools(qemu=Path(qemu), busybox=Path(busybox))


def find_image(kernel: str, cache: Path) -> Path:
    """The ``vmlinuz`` of ``kernel`` (one of ``KERNELS``) in the cache folder."""
    image = cache / kernel / "vmlinuz"
    if not image.is_file():
        raise Missing(f"no {kernel} kernel image at {image}; run {SETUP_COMMAND}")
    return image


def image_package(image: Path) -> str:
    """The Debian package and version the image came from, as the setup script recorded it."""
    record = image.parent / "package"
    return record.read_text().strip() if record.is_file() else "unknown package"
