"""Writing a file whole or not at all, and checking a directory before a long run writes to it."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path


class WriteError(ValueError):
    """A file or directory that cannot be written: one line naming the path and why."""


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` whole (a temporary file in its directory, renamed), or
    raise ``WriteError`` leaving it as it was. A read-only file is not replaced."""
    if path.exists() and not _writable(path):
        raise WriteError(f"cannot write {path}: it is read-only")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise WriteError(f"cannot write {path}: {_reason(e, path.parent)}") from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise WriteError(f"cannot write {path}: {_reason(e, path)}") from None


def check_writable_dir(d: Path) -> None:
    """Create ``d`` if it is missing and check that files can be written in it; raises
    ``WriteError`` when it is not a directory, is a symlink loop, or is read-only."""
    try:
        d.mkdir(parents=True, exist_ok=True)
        if not _writable(d):
            raise PermissionError(errno.EACCES, "it is read-only")
        fd, probe = tempfile.mkstemp(dir=d, prefix=".pcpfuzz-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise WriteError(f"{d}: cannot write there: {_reason(e, d)}") from None


def _writable(path: Path) -> bool:
    """Whether ``path`` may be written: its owner write bit is set (honoured also for root,
    who may write anything) and the process has write access."""
    return bool(path.stat().st_mode & stat.S_IWUSR) and os.access(path, os.W_OK)


def _reason(e: OSError, path: Path) -> str:
    """An ``OSError`` in words, a symlink loop and a file in place of a directory named."""
    if path.is_symlink() and not path.exists():
        return "a symlink loop or a broken symlink"
    if path.exists() and not path.is_dir() and e.errno in (errno.EEXIST, errno.ENOTDIR):
        return "not a directory"
    return (e.strerror or str(e)).lower()
