"""Which files an input reads: glob matching, scans, identities and fingerprints.

Everything here is synchronous and touches only the paths it is given; the reader calls the
filesystem-touching functions in a worker thread.

A file is identified by device and inode, confirmed by a fingerprint of its first bytes (a new file can
get the inode of a deleted one). Symlinks are followed: two paths to one file are one file.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass

FileId = tuple[int, int]  # (st_dev, st_ino)
FINGERPRINT_BYTES = 256
_GLOB_CHARS = re.compile(r"[*?\[]")


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob with :func:`glob.glob` semantics: ``*``/``?``/``[..]`` stay within one path
    segment and do not match a leading dot; ``**`` as a whole segment matches any number of segments."""
    parts: list[str] = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append("(?:[^/]*/)*" if not last else ".*")
            continue
        out = "" if segment.startswith(".") or not segment else r"(?!\.)"
        i = 0
        while i < len(segment):
            char = segment[i]
            if char == "*":
                out += "[^/]*"
            elif char == "?":
                out += "[^/]"
            elif char == "[":
                close = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "]") else i + 1)
                if close == -1:
                    out += re.escape(char)
                else:
                    body = segment[i + 1 : close]
                    if body.startswith("!"):
                        body = "^" + body[1:]
                    out += "[" + body.replace("\\", "\\\\") + "]"
                    i = close
            else:
                out += re.escape(char)
            i += 1
        parts.append(out + ("" if last else "/"))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


class PathMatcher:
    """An input's include globs and exclude patterns.

    An exclude pattern without ``/`` is matched against the file name (``*.gz``), one with ``/`` against
    the whole path. A file is excluded when its path or, for a symlink, its target is.
    """

    def __init__(self, include: Iterable[str], exclude: Iterable[str] = ()) -> None:
        self.include = tuple(include)
        self.exclude = tuple(exclude)
        self._include_re = [glob_to_regex(p) for p in self.include]
        self._exclude_name = [glob_to_regex(p) for p in self.exclude if "/" not in p]
        self._exclude_path = [glob_to_regex(p) for p in self.exclude if "/" in p]

    def included(self, path: str) -> bool:
        return any(r.match(path) for r in self._include_re)

    def excluded(self, path: str) -> bool:
        name = os.path.basename(path)
        return any(r.match(name) for r in self._exclude_name) or any(
            r.match(path) for r in self._exclude_path
        )

    def matches(self, path: str, realpath: str | None = None) -> bool:
        if not self.included(path) or self.excluded(path):
            return False
        return realpath is None or realpath == path or not self.excluded(realpath)


def static_prefix(pattern: str) -> str:
    """The directory part of a glob before its first wildcard: what a watcher has to watch."""
    parts = pattern.split("/")
    fixed: list[str] = []
    for part in parts[:-1]:
        if _GLOB_CHARS.search(part):
            break
        fixed.append(part)
    return "/".join(fixed) or "/"


def watch_roots(patterns: Iterable[str]) -> list[str]:
    """The static prefixes of the patterns, without those inside another one."""
    roots = sorted({os.path.normpath(static_prefix(p)) for p in patterns})
    kept: list[str] = []
    for root in roots:
        if not any(is_under(root, other) for other in kept):
            kept.append(root)
    return kept


def is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@dataclass(frozen=True, slots=True)
class FoundFile:
    """A regular file a scan found: the path the glob matched, its symlink target and identity."""

    path: str
    realpath: str
    file_id: FileId
    size: int


@dataclass(slots=True)
class ScanResult:
    files: dict[str, FoundFile]
    errors: list[tuple[str, str]]  # (path, reason) for matched paths that could not be looked at


def scan(matcher: PathMatcher) -> ScanResult:
    """Glob the include patterns and stat every match (following symlinks); blocking."""
    files: dict[str, FoundFile] = {}
    errors: list[tuple[str, str]] = []
    for pattern in matcher.include:
        for path in glob.iglob(pattern, recursive="**" in pattern):
            if path in files or matcher.excluded(path):
                continue
            found = stat_path(path, errors)
            if found is not None and (found.realpath == path or not matcher.excluded(found.realpath)):
                files[path] = found
    return ScanResult(files, errors)


def stat_path(path: str, errors: list[tuple[str, str]] | None = None) -> FoundFile | None:
    """The file at ``path`` if it is (or links to) a regular file; None otherwise."""
    try:
        link = os.lstat(path)
        if stat.S_ISLNK(link.st_mode):
            st = os.stat(path)
            realpath = os.path.realpath(path)
        else:
            st = link
            realpath = path
    except FileNotFoundError:
        return None  # gone since the glob, or a dangling symlink
    except OSError as exc:
        if errors is not None:
            errors.append((path, exc.strerror or type(exc).__name__))
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FoundFile(path, realpath, (st.st_dev, st.st_ino), st.st_size)


def fingerprint(prefix: bytes) -> str:
    """A short hash of a file's first bytes (up to FINGERPRINT_BYTES of them)."""
    return hashlib.blake2b(prefix[:FINGERPRINT_BYTES], digest_size=8).hexdigest()


def read_prefix(fd: int) -> bytes:
    return os.pread(fd, FINGERPRINT_BYTES, 0)


def find_inode(directory: str, file_id: FileId) -> str | None:
    """A name of the file with this identity in ``directory`` (a rotated file: ``app.log.1``)."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    if entry.inode() == file_id[1] and entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        if (st.st_dev, st.st_ino) == file_id:
                            return entry.path
                except OSError:
                    continue
    except OSError:
        return None
    return None
