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
    read_attribute_or_none,
    read_attributes,
    read_int,
    read_optional,
    read_text,
    read_uint,
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
