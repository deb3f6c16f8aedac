"""Which files an input reads: glob matching, scans, first contact with new files, and orphan recovery.

Everything here is synchronous and touches only the paths it is given; the reader calls the
filesystem-touching functions in a worker thread. Files are told apart by :mod:`.identity`. Symlinks
are followed: two paths to one file are one file.

A rescan lists again only the directories that changed since the scan before (:class:`Listings`): a
directory's modification time changes whenever an entry is added to, removed from or renamed in it, so
an unchanged directory holds the names it held. The files found are still looked at one by one (their
sizes tell the reader about writes no event reported).

Orphans are files with a saved checkpoint entry that no glob reaches any more: rotated while the agent
was down (``app.log`` -> ``app.log.1``). :func:`locate_orphans` finds them next to where they were, by
inode, confirmed by their fingerprint, so their rest is read before their successors.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from nodeagent.logs.identity import FileId, file_id, find_inode, read_prefix
from nodeagent.logs.lines import HeldPositions
from nodeagent.safeio import OutsideRoots, is_under

_GLOB_CHARS = re.compile(r"[*?\[]")


@functools.lru_cache(maxsize=256)  # scans match the same few segments in every directory
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
        # One regex per kind: every file a scan finds is checked against all the excludes.
        self._exclude_name = _any_of([p for p in self.exclude if "/" not in p])
        self._exclude_path = _any_of([p for p in self.exclude if "/" in p])

    def included(self, path: str) -> bool:
        return any(r.match(path) for r in self._include_re)

    def excluded(self, path: str) -> bool:
        if self._exclude_path is not None and self._exclude_path.match(path):
            return True
        return self._exclude_name is not None and self._exclude_name.match(os.path.basename(path)) is not None

    def matches(self, path: str, realpath: str | None = None) -> bool:
        if not self.included(path) or self.excluded(path):
            return False
        return realpath is None or realpath == path or not self.excluded(realpath)


def _any_of(patterns: list[str]) -> re.Pattern[str] | None:
    """A regex matching what any of the globs matches (each is anchored at both ends); None for none."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{glob_to_regex(p).pattern})" for p in patterns), re.DOTALL)


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


@dataclass(frozen=True, slots=True)
class FoundFile:
    """A regular file a scan found: the path the glob matched, its symlink target and identity."""

    path: str
    realpath: str
    file_id: FileId
    size: int


# Where container runtimes put the files kubelet's and their own symlinks lead to: kubelet links
# /var/log/containers/*.log to /var/log/pods/<pod>/<container>/<n>.log; with docker (dockershim,
# cri-dockerd) those are links to /var/lib/docker/containers/<id>/<id>-json.log. containerd and CRI-O
# write into /var/log/pods themselves.
RUNTIME_ROOTS = ("/var/log/pods", "/var/lib/docker/containers")


class Roots:
    """The directories a file an input reads may resolve to: the static prefixes of its globs and
    RUNTIME_ROOTS. Anything else (``0.log -> /etc/shadow``, a directory link to ``/``) is refused."""

    def __init__(self, patterns: Iterable[str], runtime_roots: Iterable[str] | None = None) -> None:
        extra = RUNTIME_ROOTS if runtime_roots is None else runtime_roots
        roots = {os.path.normpath(static_prefix(p)) for p in patterns} | {os.path.normpath(r) for r in extra}
        # A root that is itself a link (an admin's choice) is allowed where it leads, too.
        roots |= {os.path.realpath(root) for root in roots}
        self.paths = tuple(sorted(roots))

    def allows(self, realpath: str) -> bool:
        return any(is_under(realpath, root) for root in self.paths)


@dataclass(slots=True)
class ScanResult:
    files: dict[str, FoundFile]
    errors: list[tuple[str, str]]  # (path, reason) for matched paths that could not be looked at
    refused: list[tuple[str, str]]  # (path, where it leads) for matches resolving outside the roots
    dangling: list[str] = field(default_factory=list)  # matched symlinks whose target does not exist
    # (directory, reason) for directories the patterns lead into that cannot be listed (permissions)
    unlistable: list[tuple[str, str]] = field(default_factory=list)


# A directory changed less than this before it was listed may change again within the same timestamp
# (filesystems stamp with the kernel's coarse clock, some to the second or two): its listing is not
# kept. Timestamps are assumed to come from this host's clock (a network filesystem's server whose clock
# is behind by more than this, stamping coarsely, could hide a change made within one tick of the one
# before until the directory changes again).
RACY_NS = 3_000_000_000

# What a listing keeps of each entry: enough to tell where a pattern goes without another look.
OTHER, DIRECTORY, SYMLINK = "f", "d", "l"


_U64 = (1 << 64) - 1


class Listings:
    """The names in each directory a scan listed, kept for the next scan of the same input, which lists
    again only the directories whose (device, inode, mtime, ctime) changed: adding, removing or renaming
    an entry changes its directory's mtime and ctime. A listing is kept only if the directory had not
    changed for RACY_NS before it was listed, so a change within the same timestamp tick cannot go
    unseen (the "racy mtime" rule). Symlinks are kept as symlinks: where they lead is looked at anew on
    every scan. Directories no scan reaches any more are forgotten.

    Kept by that stat (one integer: the same directory whatever path reached it), each listing as one
    interned string (directories holding the same names, "0.log" in every container's, share it):
    about a hundred bytes per directory."""

    def __init__(self, racy_ns: int | None = None) -> None:
        self.racy_ns = RACY_NS if racy_ns is None else racy_ns
        self._kept: dict[int, str] = {}
        self._next: dict[int, str] = {}
        self.listed = 0  # directories the last scan listed (not those taken from the scan before)

    def __len__(self) -> int:
        """Directories kept."""
        return len(self._kept)

    def start(self) -> None:
        self._next, self.listed = {}, 0

    def finish(self) -> None:
        """The scan is over: forget the directories it did not reach."""
        self._kept, self._next = self._next, {}

    def entries(self, directory: str) -> list[str]:
        """The entries of ``directory`` as :func:`list_directory` gives them; raises OSError like
        :func:`os.scandir`."""
        st = os.stat(directory)
        key = (
            (st.st_mtime_ns & _U64)
            | (st.st_ctime_ns & _U64) << 64
            | (st.st_ino & _U64) << 128
            | (st.st_dev & _U64) << 192
        )
        kept = self._next.get(key)
        if kept is None:
            kept = self._kept.get(key)
        if kept is not None:
            self._next[key] = kept
            return kept.split("\0") if kept else []
        now = time.time_ns()  # after the stat: a change between the two shows in the next scan's stat
        entries = list_directory(directory)
        self.listed += 1
        if max(st.st_mtime_ns, st.st_ctime_ns) < now - self.racy_ns:
            self._next[key] = sys.intern("\0".join(entries))  # NUL is in no name
        return entries


def list_directory(directory: str) -> list[str]:
    """Each entry of ``directory`` as its kind (DIRECTORY, SYMLINK or OTHER) followed by its name;
    raises OSError like :func:`os.scandir`."""
    with os.scandir(directory) as entries:
        return [_kind(entry) + entry.name for entry in entries]


def _kind(entry: os.DirEntry[str]) -> str:
    try:
        if entry.is_symlink():
            return SYMLINK
        return DIRECTORY if entry.is_dir(follow_symlinks=False) else OTHER
    except OSError:
        return OTHER


def scan(matcher: PathMatcher, roots: Roots, listings: Listings | None = None) -> ScanResult:
    """Expand the include patterns and stat every match (following symlinks that stay within
    ``roots``); blocking. With ``listings`` (kept from the scan before), unchanged directories are not
    listed again."""
    result = ScanResult({}, [], [])
    files = result.files
    if listings is not None:
        listings.start()
    for pattern in matcher.include:
        for path in expand_glob(pattern, roots, result.refused, result.unlistable, listings):
            if path in files or matcher.excluded(path):
                continue
            found = stat_path(path, result.errors, result.dangling)
            if found is None or (found.realpath != path and matcher.excluded(found.realpath)):
                continue
            if found.realpath != path and not roots.allows(found.realpath):
                result.refused.append((path, found.realpath))
                continue
            files[path] = found
    if listings is not None:
        listings.finish()
    return result


def expand_glob(
    pattern: str,
    roots: Roots,
    refused: list[tuple[str, str]],
    unlistable: list[tuple[str, str]] | None = None,
    listings: Listings | None = None,
) -> Iterator[str]:
    """The paths :func:`glob.glob` (``recursive=True``) would give for ``pattern``, except that it does
    not descend into a directory symlink leading outside ``roots`` (such links land in ``refused``) and
    ``**`` does not loop through links. Directories that exist but cannot be listed (no permission) land
    in ``unlistable`` with the reason, where glob would skip them silently."""
    prefix = static_prefix(pattern)
    rest = pattern[len(prefix) :].lstrip("/") if pattern.startswith(prefix) else pattern
    if not rest:
        return
    walk = _Walk(roots, refused, [] if unlistable is None else unlistable, listings)
    yield from _expand(prefix, rest.split("/"), walk, set())


@dataclass
class _Walk:
    """What one glob expansion carries down: the roots, where refusals and unlistable directories go,
    and the listings of the scan before."""

    roots: Roots
    refused: list[tuple[str, str]]
    unlistable: list[tuple[str, str]]
    listings: Listings | None = None

    def entries(self, directory: str) -> list[str] | None:
        """The entries of ``directory`` (see :func:`list_directory`); None if it cannot be listed."""
        try:
            if self.listings is None:
                return list_directory(directory)
            return self.listings.entries(directory)
        except OSError as exc:
            if not isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                self.unlistable.append((directory, exc.strerror or type(exc).__name__))
            return None


def _enter(path: str, kind: str, walk: _Walk) -> bool:
    """May the walk go into ``path``? Into a directory, not through a link leading outside the roots."""
    if kind == DIRECTORY:
        return True
    if kind != SYMLINK or not os.path.isdir(path):
        return False
    target = os.path.realpath(path)
    if walk.roots.allows(target):
        return True
    walk.refused.append((path, target))
    return False


def _expand(directory: str, segments: list[str], walk: _Walk, seen: set[FileId]) -> Iterator[str]:
    """The paths below ``directory`` matching ``segments``, one segment (one level) at a time (in the
    order a depth-first walk gives), ``**`` depth first."""
    directories = [directory]
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            for each in directories:
                yield from _expand_any_depth(each, segments[index:], walk, seen)
            return
        below: list[str] = []
        if not _GLOB_CHARS.search(segment):
            for each in directories:
                path = os.path.join(each, segment)
                if last:
                    if os.path.lexists(path):
                        yield path
                elif os.path.isdir(path) and _enter(
                    path, SYMLINK if os.path.islink(path) else DIRECTORY, walk
                ):
                    below.append(path)
        else:
            regex = glob_to_regex(segment)
            for each in directories:
                listed = walk.entries(each)
                if listed is None:
                    continue
                base = each if each.endswith("/") else each + "/"
                for entry in listed:
                    if regex.match(entry, 1) is None:
                        continue
                    path = base + entry[1:]
                    if last:
                        yield path
                    elif entry[0] == DIRECTORY or _enter(path, entry[0], walk):
                        below.append(path)
        directories = below


def _expand_any_depth(directory: str, segments: list[str], walk: _Walk, seen: set[FileId]) -> Iterator[str]:
    """``segments`` starting with ``**``: zero or more directories, then the rest."""
    more = segments[1:]
    try:
        key = file_id(os.stat(directory))
    except OSError:
        return
    if key in seen:
        return  # a link back up the tree
    seen = seen | {key}
    if more:
        yield from _expand(directory, more, walk, seen)  # ** as zero directories
    listed = walk.entries(directory)
    if listed is None:
        return
    # glob's ** skips hidden names
    base = directory if directory.endswith("/") else directory + "/"
    visible = [(base + entry[1:], entry[0]) for entry in listed if not entry.startswith(".", 1)]
    for sub in [path for path, kind in visible if _enter(path, kind, walk)]:
        if not more:
            yield sub
        yield from _expand_any_depth(sub, segments, walk, seen)
    if not more:  # ** last: every file below, too
        yield from (path for path, kind in visible if not _is_dir(path, kind))


def _is_dir(path: str, kind: str) -> bool:
    return kind == DIRECTORY or (kind == SYMLINK and os.path.isdir(path))


def stat_path(
    path: str, errors: list[tuple[str, str]] | None = None, dangling: list[str] | None = None
) -> FoundFile | None:
    """The file at ``path`` if it is (or links to) a regular file; None otherwise. A symlink whose
    target does not exist goes to ``dangling``."""
    try:
        link = os.lstat(path)
    except FileNotFoundError:
        return None  # gone since the glob
    except OSError as exc:
        if errors is not None:
            errors.append((path, exc.strerror or type(exc).__name__))
        return None
    try:
        if stat.S_ISLNK(link.st_mode):
            st = os.stat(path)
            realpath = os.path.realpath(path)
        else:
            st = link
            realpath = path
    except FileNotFoundError:
        if dangling is not None:
            dangling.append(path)
        return None
    except OSError as exc:
        if errors is not None:
            errors.append((path, exc.strerror or type(exc).__name__))
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FoundFile(path, realpath, file_id(st), st.st_size)


OWN_OUTPUT_FDS = (1, 2)  # stdout (the stdout sink) and stderr (the agent's log)


def own_output_files() -> dict[FileId, str]:
    """The regular files the agent's stdout and stderr go to (``nodeagent run > /var/log/x.log``), by
    identity, with a name for the log: reading them would feed its output back in; blocking."""
    found: dict[FileId, str] = {}
    for fd in OWN_OUTPUT_FDS:
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                found[file_id(st)] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
    return found


@dataclass(slots=True)
class OpenedFile:
    """A newly found file, opened and fingerprinted (see :func:`open_new`)."""

    found: FoundFile
    fd: int | None = None
    size: int = 0
    prefix: bytes = b""
    changed_ns: int = 0  # st_ctime_ns: when its content or metadata last changed
    error: str | None = None
    refused: str | None = None  # where it leads, when that is outside the roots


def open_new(found: list[FoundFile], keep_open: int, open_file: Callable[[str], int]) -> list[OpenedFile]:
    """Open and fingerprint new files; beyond the first ``keep_open`` the descriptors are closed again.

    A file gone since it was found is left out; one that cannot be opened or read comes back with
    ``error`` set."""
    opened = []
    for item in found:
        result = OpenedFile(item)
        try:
            fd = open_file(item.path)
        except FileNotFoundError:
            continue
        except OutsideRoots as exc:
            result.refused = exc.target
            opened.append(result)
            continue
        except OSError as exc:
            result.error = exc.strerror or str(exc) or type(exc).__name__
            opened.append(result)
            continue
        try:
            st = os.fstat(fd)
            if file_id(st) != item.file_id:
                # Replaced since the scan: describe what is there now.
                result.found = FoundFile(item.path, item.realpath, file_id(st), st.st_size)
            result.size, result.prefix, result.changed_ns = st.st_size, read_prefix(fd), st.st_ctime_ns
        except OSError as exc:
            result.error = exc.strerror or type(exc).__name__
        if result.error is None and keep_open > 0:
            result.fd = fd
            keep_open -= 1
        else:
            os.close(fd)
        opened.append(result)
    return opened


class SavedPosition(Protocol):
    """A checkpoint entry as orphan recovery needs it (:class:`nodeagent.logs.checkpoint.SavedEntry`)."""

    @property
    def file_id(self) -> FileId: ...

    @property
    def path(self) -> str: ...

    @property
    def offset(self) -> int: ...

    @property
    def replay(self) -> HeldPositions | None: ...

    def matches(self, prefix: bytes) -> bool: ...


@dataclass(slots=True)
class Orphan:
    """A saved entry's file, found under another name and opened."""

    entry: SavedPosition
    path: str
    fd: int
    size: int
    prefix: bytes


def locate_orphans(entries: Sequence[SavedPosition], open_file: Callable[[str], int]) -> list[Orphan]:
    """Find each entry's file in the directory it was in (same identity, same first bytes)."""
    out = []
    for entry in entries:
        path = find_inode(os.path.dirname(entry.path), entry.file_id)
        if path is None:
            continue
        try:
            fd = open_file(path)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            prefix = read_prefix(fd)
        except OSError:
            os.close(fd)
            continue
        if file_id(st) != entry.file_id or not entry.matches(prefix):
            os.close(fd)
            continue
        out.append(Orphan(entry, path, fd, st.st_size, prefix))
    return out
