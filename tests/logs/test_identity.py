"""File identity (nodeagent.logs.identity): dev/inode, first-bytes fingerprints, finding a renamed file."""

from __future__ import annotations

import os
from pathlib import Path

from nodeagent.logs.identity import (
    FINGERPRINT_BYTES,
    file_id,
    find_inode,
    fingerprint,
    head_matches,
    path_leads_to,
    prefix_matches,
)


def test_a_fingerprint_covers_the_first_bytes_only() -> None:
    head = b"x" * FINGERPRINT_BYTES
    assert fingerprint(head + b"tail one") == fingerprint(head + b"tail two")
    assert fingerprint(b"a") != fingerprint(b"b")


def test_a_prefix_matches_when_its_first_fp_len_bytes_hash_to_the_fingerprint() -> None:
    fp = fingerprint(b"hello")
    assert prefix_matches(b"hello", 5, fp)
    assert prefix_matches(b"hello, world", 5, fp)  # the file grew
    assert not prefix_matches(b"hell", 5, fp)  # shorter than what was fingerprinted: another file
    assert not prefix_matches(b"jello", 5, fp)
    assert prefix_matches(b"", 0, fingerprint(b""))


def test_head_matches_reads_the_open_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello, world")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert head_matches(fd, 5, fingerprint(b"hello"))
        assert not head_matches(fd, 5, fingerprint(b"jello"))
        assert head_matches(fd, 0, "anything")  # nothing fingerprinted yet: nothing to contradict
    finally:
        os.close(fd)


def test_find_inode_and_path_leads_to_follow_a_rename(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("hello\n")
    identity = file_id(os.stat(log))
    assert path_leads_to(str(log), identity)
    os.rename(log, tmp_path / "app.log.1")
    assert not path_leads_to(str(log), identity)
    assert find_inode(str(tmp_path), identity) == str(tmp_path / "app.log.1")
    assert find_inode(str(tmp_path / "nowhere"), identity) is None
    log.write_text("another file\n")
    assert not path_leads_to(str(log), identity)
