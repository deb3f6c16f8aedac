"""The host-filesystem layer: Paths, the readers (bounded, decoded as Go's ToValidUTF8, one directory
descriptor for several attributes) and the sysfs listings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nodeagent.metrics.host.files import (
    Paths,
    decode,
    list_dir,
    read_attribute,
    read_attribute_bytes,
    read_attribute_or_none,
    read_attributes,
    read_int,
    read_lines,
    read_optional,
    read_path_text,
    read_text,
    read_uint,
    valid_text,
)
from nodeagent.metrics.host.sysfs import class_devices, net_devices, numbered_entries
from tests.metrics.conftest import write_tree


def test_paths_are_strings_below_their_roots() -> None:
    paths = Paths(procfs=Path("/host/proc"), sysfs="/host/sys", rootfs=Path("/host"))
    assert paths.proc("net", "dev") == "/host/proc/net/dev"
    assert paths.sys("class", "net") == "/host/sys/class/net"
    assert paths.root("/etc/os-release") == "/host/etc/os-release"
    assert Paths().root("/etc/os-release") == "/etc/os-release"
    assert Paths().root("/") == "/"
    assert paths.udev("b8:0") == "/run/udev/data/b8:0"
    assert isinstance(paths.procfs, str) and paths.procfs == "/host/proc"


def test_decode_replaces_each_invalid_run_once() -> None:
    assert decode(b"ab\xff\xfecd") == "ab\ufffdcd"
    assert decode("Ünïcode".encode()) == "Ünïcode"


def test_readers(tmp_path: Path) -> None:
    write_tree(tmp_path, {"value": " 5 \n", "negative": "-3\n", "label": b"up\xfflink\n", "text": "a\nb\n"})
    (tmp_path / "dir").mkdir()
    assert read_attribute(tmp_path / "value") == "5"
    assert read_attribute(tmp_path / "label") == "up\ufffdlink"
    assert read_attribute_or_none(tmp_path / "missing") is None
    assert read_attribute_or_none(tmp_path / "dir") is None
    with pytest.raises(FileNotFoundError):
        read_attribute(tmp_path / "missing")
    assert read_uint(tmp_path / "value") == 5
    assert read_int(tmp_path / "negative") == -3
    with pytest.raises(ValueError):
        read_uint(tmp_path / "negative")
    assert read_text(tmp_path / "text") == "a\nb\n"
    assert read_optional(tmp_path / "text") == "a\nb\n"
    assert read_optional(tmp_path / "missing") is None
    assert read_attributes(tmp_path, ["value", "missing", "dir", "label"]) == {
        "value": "5",
        "label": "up\ufffdlink",
    }
    assert read_attributes(tmp_path / "gone", ["value"]) == {}


def test_read_text_is_bounded_and_cuts_at_a_line_end(tmp_path: Path) -> None:
    write_tree(tmp_path, {"big": "line one\nline two\nline three\n"})
    assert read_text(tmp_path / "big", limit=20) == "line one\nline two\n"
    assert read_text(tmp_path / "big", limit=1000) == "line one\nline two\nline three\n"


def test_listings_in_go_order(tmp_path: Path) -> None:
    for name in ("cpu10", "cpu2", "cpu1", "cpux", "cpu", "B", "a"):
        (tmp_path / name).mkdir()
    assert [suffix for suffix, _ in numbered_entries(str(tmp_path), "cpu")] == ["1", "10", "2"]
    assert list_dir(tmp_path) == ["B", "a", "cpu", "cpu1", "cpu10", "cpu2", "cpux"]


def test_sysfs_class_and_net_devices(tmp_path: Path) -> None:
    paths = Paths(sysfs=tmp_path)
    with pytest.raises(FileNotFoundError):
        net_devices(paths)
    with pytest.raises(FileNotFoundError):
        class_devices(paths, "hwmon")
    (tmp_path / "devices/virtual/net/eth0").mkdir(parents=True)
    (tmp_path / "class/net").mkdir(parents=True)
    os.symlink("../../nowhere", tmp_path / "class/net/gone0")
    os.symlink("../../devices/virtual/net/eth0", tmp_path / "class/net/eth0")
    write_tree(tmp_path, {"class/net/bonding_masters": ""})
    assert net_devices(paths) == {"eth0": f"{tmp_path}/class/net/eth0"}
    assert [name for name, _ in class_devices(paths, "net")] == ["bonding_masters", "eth0", "gone0"]


# --- hostile trees: invalid UTF-8, FIFOs, endless files ---------------------------------------------


def test_valid_text_for_names_the_os_module_decoded() -> None:
    assert valid_text("eth0") == "eth0"
    assert valid_text(os.fsdecode(b"eth\xff\xfe0")) == "eth\ufffd0"
    assert valid_text("caf\u00e9") == "caf\u00e9"
    assert valid_text("lone \ud800 surrogate") == "lone ? surrogate"


def test_listings_give_valid_labels_and_openable_paths(tmp_path: Path) -> None:
    device = os.fsencode(tmp_path) + b"/class/hwmon/hw\xffmon0"
    os.makedirs(device)
    with open(device + b"/name", "w") as fh:
        fh.write("chip\n")
    ((name, path),) = class_devices(Paths(sysfs=tmp_path), "hwmon")
    assert name == "hw\ufffdmon0"
    assert read_attribute(f"{path}/name") == "chip"


def test_path_text_keeps_bytes_for_reopening(tmp_path: Path) -> None:
    write_tree(tmp_path, {"mounts": b"/dev/sda /mnt/d\xffata ext4 rw 0 0\n"})
    text = read_path_text(tmp_path / "mounts")
    mount_point = text.split()[1]
    assert os.fsencode(mount_point) == b"/mnt/d\xffata" and valid_text(mount_point) == "/mnt/d\ufffdata"


def test_read_lines_streams_across_chunks_and_stops_at_the_limit(tmp_path: Path) -> None:
    lines = [f"line {i} " + "x" * (i % 50) for i in range(20000)]  # ~1.1 MB: many 64 KiB chunks
    write_tree(tmp_path, {"table": "\n".join(lines) + "\n", "no_newline": "a\nb"})
    assert list(read_lines(tmp_path / "table")) == lines
    assert list(read_lines(tmp_path / "no_newline")) == ["a", "b"]
    assert list(read_lines(tmp_path / "table", limit=20)) == ["line 0 ", "line 1 x"]
    with pytest.raises(FileNotFoundError):
        list(read_lines(tmp_path / "missing"))


def test_fifos_and_endless_files_neither_block_nor_grow(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    assert read_text(tmp_path / "fifo") == ""
    assert read_attribute(tmp_path / "fifo") == ""
    assert list(read_lines(tmp_path / "fifo")) == []
    os.symlink("/dev/zero", tmp_path / "zero")
    assert read_text(tmp_path / "zero", limit=1 << 20) == ""  # no whole line within the limit
    assert list(read_lines(tmp_path / "zero", limit=1 << 20)) == []
    assert len(read_attribute_bytes(tmp_path / "zero")) == 4096
