"""The host side without QEMU: the initramfs archive, tool and image discovery, the QEMU command
line, the boot line and the exit status when something is missing."""

import gzip
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcpfuzz.crosscheck.cli import EXIT_MISSING, check_kernel, crosscheck_command
from pcpfuzz.crosscheck.guest import INIT_SCRIPT, SCENARIO
from pcpfuzz.crosscheck.initramfs import build_initramfs, cpio_newc
from pcpfuzz.crosscheck.model import ModelError
from pcpfuzz.crosscheck.qemu import Boot, boot, qemu_command
from pcpfuzz.crosscheck.tools import (
    Missing,
    Tools,
    cache_dir,
    find_image,
    is_static_elf,
)

DATA = Path(__file__).parent / "data" / "crosscheck"


def read_newc(archive: bytes) -> dict[str, tuple[int, bytes]]:
    """Name -> (mode, data) of a newc archive."""
    out = {}
    pos = 0
    while True:
        assert archive[pos : pos + 6] == b"070701"
        fields = [int(archive[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_at = pos + 110
        name = archive[name_at : name_at + namesize - 1].decode()
        data_at = name_at + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, archive[data_at : data_at + size])
        pos = data_at + size + (-size % 4)


def test_newc_round_trip() -> None:
    archive = cpio_newc(["bin"], {"bin/x": b"abc", "init": b"#!"}, ["dev/console"])
    entries = read_newc(archive)
    assert entries["bin/x"] == (0o100755, b"abc")
    assert entries["init"][1] == b"#!"
    assert entries["bin"][0] == 0o040755
    assert entries["dev/console"][0] == 0o020600
    assert len(archive) % 4 == 0


def test_initramfs_is_deterministic(tmp_path: Path) -> None:
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake")
    one = build_initramfs(busybox, tmp_path / "a.gz").read_bytes()
    two = build_initramfs(busybox, tmp_path / "b.gz").read_bytes()
    assert one == two
    entries = read_newc(gzip.decompress(one))
    assert entries["init"][1] == INIT_SCRIPT.encode()
    assert entries["bin/busybox"][1] == b"\x7fELF fake"
    assert INIT_SCRIPT.startswith("#!/bin/busybox sh\n")


def elf(tmp_path: Path, types: list[int]) -> Path:
    """A minimal ELF64 header with program headers of the given types."""
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)
    struct.pack_into("<HH", header, 0x36, 56, len(types))
    body = b"".join(struct.pack("<I", t) + bytes(52) for t in types)
    path = tmp_path / f"elf{len(types)}"
    path.write_bytes(bytes(header) + body)
    return path


def test_static_elf(tmp_path: Path) -> None:
    assert is_static_elf(elf(tmp_path, [1, 1, 4]))
    assert not is_static_elf(elf(tmp_path, [6, 3, 1]))
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    assert not is_static_elf(script)


def test_cache_dir_and_missing_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCPFUZZ_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path / "crosscheck"
    with pytest.raises(Missing, match="crosscheck-setup.sh"):
        find_image("5.10", cache_dir())


def test_missing_qemu_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(crosscheck_command, [])
    assert result.exit_code == EXIT_MISSING
    assert "qemu-system-x86_64 not found" in result.output
    assert "crosscheck-setup.sh" in result.output


def test_qemu_command(tmp_path: Path) -> None:
    tools = Tools(qemu=Path("/q"), busybox=Path("/b"))
    cmd = qemu_command(tools, Path("/k"), Path("/i"), SCENARIO, tmp_path)
    assert cmd[0] == "/q"
    assert cmd[cmd.index("-cpu") + 1] == "qemu64"
    assert "pc-dimm,id=d1,memdev=m1" in cmd
    append = cmd[cmd.index("-append") + 1]
    assert "cryptomgr.notests" in append
    assert "memhp_default_state=offline" in append  # Debian 6.12 onlines hot-added memory
    assert "xc.steps=" + ",".join(SCENARIO) in append
    assert f"file:{tmp_path / 'data.log'}" in cmd


def test_unfinished_boot_is_one_failing_line() -> None:
    hung = Boot(data="@@ KERNEL x\n", console="", seconds=300.0, attempts=2)
    (line,) = check_kernel("6.1", hung, "pkg")
    assert line.name == "boot"
    assert not line.ok
    assert "attempt 2" in line.kernel


def fake_qemu(tmp_path: Path, body: str) -> Tools:
    """A stand-in QEMU: a shell script given the real command line."""
    script = tmp_path / "qemu"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return Tools(qemu=script, busybox=Path("/b"))


WRITE_DONE = """n=0
for a in "$@"; do
    case $a in file:*) n=$((n + 1)); [ $n -eq 2 ] && echo "@@ DONE 1.0" >"${a#file:}" ;; esac
done
"""


def test_boot_completes_first_time(tmp_path: Path) -> None:
    result = boot(fake_qemu(tmp_path, WRITE_DONE), Path("/k"), Path("/i"), SCENARIO, tmp_path / "w")
    assert result.completed
    assert result.attempts == 1


def test_hung_boot_is_retried_once(tmp_path: Path) -> None:
    tools = fake_qemu(tmp_path, "exec sleep 30\n")
    result = boot(tools, Path("/k"), Path("/i"), SCENARIO, tmp_path / "w", timeout=0.3)
    assert not result.completed
    assert result.attempts == 2
    assert result.seconds >= 0.6


def fake_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capture: str) -> None:
    """A PATH with a QEMU that replays ``capture`` as the guest's output, a static busybox,
    and a cache holding a 5.10 "image"."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "capture.data").write_text(capture)
    fake_qemu(bin_dir, WRITE_DONE.replace('echo "@@ DONE 1.0"', f"cat {tmp_path / 'capture.data'}"))
    (bin_dir / "qemu").rename(bin_dir / "qemu-system-x86_64")
    elf(tmp_path, [1]).rename(bin_dir / "busybox")
    (bin_dir / "busybox").chmod(0o755)
    image = tmp_path / "cache" / "crosscheck" / "5.10" / "vmlinuz"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("PCPFUZZ_CACHE", str(tmp_path / "cache"))


def test_command_on_a_replayed_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_setup(tmp_path, monkeypatch, (DATA / "5.10.data").read_text())
    result = CliRunner().invoke(crosscheck_command, ["--kernel", "5.10", "--json"])
    assert result.exit_code == 0
    assert "5.10: 99/99 checks match" in result.output


def test_command_exits_1_on_a_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DATA / "5.10.data").read_text().replace("high:  378", "high:  377", 1)
    fake_setup(tmp_path, monkeypatch, text)
    result = CliRunner().invoke(crosscheck_command, ["--kernel", "5.10"])
    assert result.exit_code == 1
    assert "MISMATCH 5.10 [0] boot: DMA32 high/batch" in result.output


def test_model_error_is_a_failing_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise ModelError("model offline_pages(1,) reported HANG")

    monkeypatch.setattr("pcpfuzz.crosscheck.cli.compare", broken)
    done = Boot(data=(DATA / "5.10.data").read_text(), console="", seconds=7.0, attempts=1)
    boot_line, model_line = check_kernel("5.10", done, "pkg")
    assert boot_line.ok
    assert not model_line.ok
    assert "HANG" in model_line.model
