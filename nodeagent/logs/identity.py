"""File identity: device and inode, confirmed by a fingerprint of the file's first bytes.

A new file can get the inode of a deleted one, so an identity alone does not prove that a path, a saved
checkpoint entry or a reopened descriptor still means the file it meant; its first bytes hashing to the
remembered fingerprint does. Every comparison of that kind goes through this module.
"""

from __future__ import annotations

import hashlib
import os

FileId = tuple[int, int]  # (st_dev, st_ino)
FINGERPRINT_BYTES = 256


def file_id(st: os.stat_result) -> FileId:
    return (st.st_dev, st.st_ino)


def fingerprint(prefix: bytes) -> str:
    """A short hash of a file's first bytes (up to FINGERPRINT_BYTES of them)."""
    return hashlib.blake2b(prefix[:FINGERPRINT_BYTES], digest_size=8).hexdigest()


def read_prefix(fd: int, length: int = FINGERPRINT_BYTES) -> bytes:
    """The first ``length`` bytes of an open file (fewer if it is shorter); blocking."""
    return os.pread(fd, length, 0)


def prefix_matches(prefix: bytes, fp_len: int, fp: str) -> bool:
    """Whether a file starting with ``prefix`` is the one fingerprinted as (``fp_len``, ``fp``)."""
    return len(prefix) >= fp_len and fingerprint(prefix[:fp_len]) == fp


def head_matches(fd: int, fp_len: int, fp: str) -> bool:
    """:func:`prefix_matches` on an open file's first bytes; blocking. An empty fingerprint matches."""
    return not fp_len or prefix_matches(read_prefix(fd, fp_len), fp_len, fp)


def path_leads_to(path: str, identity: FileId) -> bool:
    """Whether ``path`` (symlinks followed) is the file with this identity now; blocking."""
    try:
        return file_id(os.stat(path)) == identity
    except OSError:
        return False


def find_inode(directory: str, identity: FileId) -> str | None:
    """A name of the file with this identity in ``directory`` (a rotated file: ``app.log.1``)."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if (
                        entry.inode() == identity[1]
                        and entry.is_file(follow_symlinks=False)
                        and file_id(entry.stat(follow_symlinks=False)) == identity
                    ):
                        return entry.path
                except OSError:
                    continue
    except OSError:
        return None
    return None
