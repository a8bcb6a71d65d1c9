"""Pack the guest's initramfs: a gzip'd ``newc`` cpio archive written in Python (no ``cpio`` tool).

It holds ``/bin/busybox`` (static), ``/init`` and the ``/dev/console`` node the kernel opens before
it runs ``/init``. The archive is deterministic: fixed inode numbers, owners and times.
"""

import gzip
import stat
from pathlib import Path

from pcpfuzz.crosscheck.guest import INIT_SCRIPT

_TRAILER = "TRAILER!!!"


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _entry(
    ino: int, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)
) -> bytes:
    """One ``newc`` record: the 110-byte header, the name, then the data, each padded to 4 bytes."""
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
    header = b"070701" + b"".join(f"{f:08x}".encode() for f in fields)
    head = header + encoded
    return head + _pad4(len(head)) + data + _pad4(len(data))


def cpio_newc(dirs: list[str], files: dict[str, bytes], consoles: list[str]) -> bytes:
    """A ``newc`` archive of directories, executable files and ``/dev/console``-style char nodes."""
    records = []
    ino = 1
    for name in dirs:
        records.append(_entry(ino, name, stat.S_IFDIR | 0o755))
        ino += 1
    for name, data in files.items():
        records.append(_entry(ino, name, stat.S_IFREG | 0o755, data))
        ino += 1
    for name in consoles:
        records.append(_entry(ino, name, stat.S_IFCHR | 0o600, rdev=(5, 1)))
        ino += 1
    records.append(_entry(0, _TRAILER, 0))
    return b"".join(records)


def build_initramfs(busybox: Path, out: Path) -> Path:
    """Write the guest initramfs (busybox + ``/init``) to ``out`` and return ``out``."""
    archive = cpio_newc(
        dirs=["bin", "dev", "proc", "sys", "tmp"],
        files={"bin/busybox": busybox.read_bytes(), "init": INIT_SCRIPT.encode()},
        consoles=["dev/console"],
    )
    out.write_bytes(gzip.compress(archive, mtime=0))
    return out
