"""safeio: only regular files, only below the roots, bounded reads, bounded quotes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nodeagent.safeio import OutsideRoots, RefusedFile, open_regular, quote, read_bounded, read_regular


def test_reads_a_regular_file_within_its_limit(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    assert read_regular(str(tmp_path / "a"), 10) == (b"x" * 10, False)
    assert read_regular(str(tmp_path / "a"), 4) == (b"xxxx", True)


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "f.prom"
    os.mkfifo(fifo)
    with pytest.raises(RefusedFile, match="not a regular file"):
        open_regular(str(fifo))


def test_device_is_refused() -> None:
    with pytest.raises(RefusedFile):
        read_regular("/dev/zero", 1 << 20)


def test_link_out_of_roots_is_refused_after_open(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret").write_text("root:$6$hash")
    (root / "0.log").symlink_to(tmp_path / "secret")
    with pytest.raises(RefusedFile, match="outside the allowed roots") as refused:
        open_regular(str(root / "0.log"), roots=[str(root)])
    assert isinstance(refused.value, OutsideRoots) and refused.value.target == str(tmp_path / "secret")
    # A link that stays inside the roots is fine, and so is the target's own root.
    (root / "real").write_text("ok")
    (root / "inside").symlink_to(root / "real")
    assert read_regular(str(root / "inside"), 10, roots=[str(root)]) == (b"ok", False)


def test_no_follow_refuses_any_final_link(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("ok")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        open_regular(str(tmp_path / "link"), follow_links=False)


def test_read_bounded_stops_at_the_limit() -> None:
    fd = os.open("/dev/zero", os.O_RDONLY)
    try:
        data, more = read_bounded(fd, 1000)
    finally:
        os.close(fd)
    assert (len(data), more) == (1000, True)


def test_quote_is_bounded() -> None:
    assert quote("abc") == "'abc'"
    long = quote(b"\xff" * 10_000)
    assert len(long) < 400 and "9800 more bytes" in long
