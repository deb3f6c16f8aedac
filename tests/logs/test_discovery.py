"""Globs, excludes, scans, identities: what the reader considers "the files of an input"."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent import safeio
from nodeagent.logs.checkpoint import CheckpointStore
from nodeagent.logs.discovery import (
    FoundFile,
    Listings,
    PathMatcher,
    Roots,
    glob_to_regex,
    locate_orphans,
    open_new,
    scan,
    stat_path,
    static_prefix,
    watch_roots,
)

GLOB_PATTERNS = [
    "*.log",
    "*.log*",
    "pods/*/*/*.log",
    "pods/*/c/*",
    "*/*/*/*.log",
    "?.log",
    "[ab].log",
    "[!ab].log",
    "**/*.log",
    "deep/**/*.txt",
    "*-json.log",
    ".*.log",
]

NAMES = ["a.log", "b.log.1", "c.txt", ".hidden.log", "0.log", "x-json.log", "[x].log"]


def make_tree(root: Path) -> None:
    for sub in ("", "pods/ns_p_u/c", "pods/ns_q_v/d", "deep/er/still"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for name in NAMES:
            (root / sub / name).write_text("x\n")


@pytest.mark.parametrize("pattern", GLOB_PATTERNS)
def test_scan_finds_what_glob_finds(tmp_path: Path, pattern: str) -> None:
    make_tree(tmp_path)
    os.symlink(tmp_path / "deep", tmp_path / "pods" / "also-deep")  # a directory link within the roots
    full = f"{tmp_path}/{pattern}"
    expected = {p for p in glob.glob(full, recursive=True) if os.path.isfile(p)}
    found = set(scan(PathMatcher([full]), Roots([full])).files)
    assert found == expected


@pytest.mark.parametrize("pattern", GLOB_PATTERNS)
def test_glob_regex_agrees_with_glob(tmp_path: Path, pattern: str) -> None:
    make_tree(tmp_path)
    full = f"{tmp_path}/{pattern}"
    expected = set(glob.glob(full, recursive=True))
    regex = glob_to_regex(full)
    everything = {str(p) for p in tmp_path.rglob("*")}
    assert {p for p in everything if regex.match(p)} == expected


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(alphabet="ab.*?-_/x0", min_size=1, max_size=12),
    pattern=st.text(alphabet="ab.*?-x0", min_size=1, max_size=8),
)
def test_glob_regex_matches_fnmatch_within_one_segment(name: str, pattern: str) -> None:
    import fnmatch

    if "/" in name or name.startswith("."):
        return
    assert bool(glob_to_regex(pattern).match(name)) == fnmatch.fnmatchcase(name, pattern)


def test_excludes_by_name_or_by_path() -> None:
    matcher = PathMatcher(["/var/log/**/*"], ["*.gz", "/var/log/journal/**"])
    assert matcher.matches("/var/log/syslog")
    assert not matcher.matches("/var/log/syslog.2.gz")
    assert not matcher.matches("/var/log/journal/abc/system.journal")
    assert not matcher.matches("/var/log/app.log", realpath="/var/log/journal/x")
    assert matcher.matches("/var/log/app.log", realpath="/data/app.log")
    assert not matcher.included("/var/lib/x")


def test_watch_roots_are_the_fixed_directories() -> None:
    assert static_prefix("/var/log/pods/*/*/*.log") == "/var/log/pods"
    assert static_prefix("/var/log/syslog") == "/var/log"
    assert static_prefix("/*.log") == "/"
    assert watch_roots(
        ["/var/log/*.log", "/var/log/pods/*/*/*.log", "/var/lib/docker/containers/*/*.log", "/var/log/syslog"]
    ) == ["/var/lib/docker/containers", "/var/log"]


def test_scan_finds_regular_files_follows_symlinks_and_skips_the_rest(tmp_path: Path) -> None:
    (tmp_path / "real.log").write_text("1\n")
    (tmp_path / "dir.log").mkdir()
    os.symlink(tmp_path / "real.log", tmp_path / "link.log")
    os.symlink(tmp_path / "missing", tmp_path / "dangling.log")
    os.mkfifo(tmp_path / "fifo.log")
    (tmp_path / "skip.log.gz").write_text("z")
    result = scan(PathMatcher([f"{tmp_path}/*.log*"], ["*.gz"]), Roots([f"{tmp_path}/*.log*"]))
    assert set(result.files) == {str(tmp_path / "real.log"), str(tmp_path / "link.log")}
    real, link = result.files[str(tmp_path / "real.log")], result.files[str(tmp_path / "link.log")]
    assert real.file_id == link.file_id
    assert link.realpath == str(tmp_path / "real.log")
    assert real.size == 2
    assert result.errors == []


def test_stat_path_sees_a_file_until_it_is_renamed(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("hello\n")
    found = stat_path(str(log))
    assert found is not None and found.size == 6 and found.realpath == str(log)
    os.rename(log, tmp_path / "app.log.1")
    assert stat_path(str(log)) is None


def test_open_new_opens_within_the_budget_and_reports_what_it_cannot_open(tmp_path: Path) -> None:
    for name in ("a.log", "b.log", "c.log"):
        (tmp_path / name).write_text(f"{name}\n")
    found = [stat_path(str(tmp_path / name)) for name in ("a.log", "b.log", "c.log")]
    (tmp_path / "c.log").unlink()  # gone since the scan: left out
    os.mkfifo(tmp_path / "b.log.fifo")
    fifo = FoundFile(str(tmp_path / "b.log.fifo"), str(tmp_path / "b.log.fifo"), (0, 0), 0)
    opened = open_new([f for f in found if f is not None] + [fifo], 1, safeio.open_regular)
    try:
        assert [item.found.path for item in opened] == [
            str(tmp_path / "a.log"),
            str(tmp_path / "b.log"),
            fifo.path,
        ]
        assert opened[0].fd is not None and opened[0].prefix == b"a.log\n"
        assert opened[1].fd is None and opened[1].error is None  # over the budget: closed again
        assert opened[2].fd is None and opened[2].error is not None  # a FIFO is never opened for reading
    finally:
        for item in opened:
            if item.fd is not None:
                os.close(item.fd)


def test_orphans_are_found_next_to_where_they_were_by_inode_and_fingerprint(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("first line\n")
    found = stat_path(str(log))
    assert found is not None
    store = CheckpointStore(tmp_path / "state.json")
    store.open_cursor(found.file_id, b"first line\n", str(log), 5)
    commit = store.snapshot()
    assert commit is not None
    store.write(commit)
    os.rename(log, tmp_path / "app.log.1")
    log.write_text("a new file\n")
    reloaded = CheckpointStore(tmp_path / "state.json")
    reloaded.load()
    orphans = locate_orphans(reloaded.unclaimed(), safeio.open_regular)
    try:
        assert [(o.path, o.entry.offset, o.size) for o in orphans] == [(str(tmp_path / "app.log.1"), 5, 11)]
    finally:
        for orphan in orphans:
            os.close(orphan.fd)


def evil_pod_tree(tmp_path: Path) -> tuple[Path, Path]:
    """/var/log/pods-like tree: one honest pod, a 0.log linking to a secret, a pod directory linking out."""
    pods, outside = tmp_path / "pods", tmp_path / "outside"
    (pods / "ns_ok_1" / "c").mkdir(parents=True)
    (pods / "ns_ok_1" / "c" / "0.log").write_text("honest\n")
    (pods / "ns_evil_2" / "c").mkdir(parents=True)
    (outside / "c").mkdir(parents=True)
    (outside / "shadow").write_text("root:$6$secret\n")
    (outside / "c" / "0.log").write_text("root:$6$secret\n")
    os.symlink(outside / "shadow", pods / "ns_evil_2" / "c" / "0.log")
    os.symlink(outside, pods / "ns_evil_3")
    return pods, outside


def test_scan_refuses_links_out_of_the_roots_and_does_not_descend_into_them(tmp_path: Path) -> None:
    pods, outside = evil_pod_tree(tmp_path)
    pattern = f"{pods}/*/*/*.log"
    result = scan(PathMatcher([pattern]), Roots([pattern], runtime_roots=()))
    assert set(result.files) == {str(pods / "ns_ok_1" / "c" / "0.log")}
    assert sorted(result.refused) == [
        (str(pods / "ns_evil_2" / "c" / "0.log"), str(outside / "shadow")),
        (str(pods / "ns_evil_3"), str(outside)),
    ]


def test_kubelet_links_into_a_runtime_root_are_followed(tmp_path: Path) -> None:
    pods, _ = evil_pod_tree(tmp_path)
    containers = tmp_path / "containers"
    containers.mkdir()
    os.symlink(pods / "ns_ok_1" / "c" / "0.log", containers / f"ok_ns_c-{'ab' * 32}.log")
    pattern = f"{containers}/*.log"
    assert scan(PathMatcher([pattern]), Roots([pattern], runtime_roots=())).files == {}
    result = scan(PathMatcher([pattern]), Roots([pattern], runtime_roots=[str(pods)]))
    assert [found.realpath for found in result.files.values()] == [str(pods / "ns_ok_1" / "c" / "0.log")]
    assert Roots(["/var/log/containers/*.log"]).allows("/var/lib/docker/containers/abc/abc-json.log")
    assert not Roots(["/var/log/containers/*.log"]).allows("/etc/shadow")


def test_the_roots_are_checked_on_the_opened_file_not_before(tmp_path: Path) -> None:
    pods, outside = evil_pod_tree(tmp_path)
    link = pods / "ns_swap_4" / "c" / "0.log"
    link.parent.mkdir(parents=True)
    os.symlink(pods / "ns_ok_1" / "c" / "0.log", link)
    pattern = f"{pods}/*/*/*.log"
    roots = Roots([pattern], runtime_roots=())
    found = scan(PathMatcher([pattern]), roots).files[str(link)]  # fine when the scan looked
    link.unlink()
    os.symlink(outside / "shadow", link)  # swapped before the open
    [opened] = open_new([found], 1, lambda path: safeio.open_regular(path, roots=roots.paths))
    assert opened.fd is None and opened.refused == str(outside / "shadow") and opened.prefix == b""


def test_directories_that_cannot_be_listed_are_reported(tmp_path: Path) -> None:
    """Real permissions: the scan runs as an unprivileged user (root reads every directory) over a tree
    where one pod's directory is 0700 root's; glob would skip it silently."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create the tree and switch to another user")
    base = Path(tempfile.mkdtemp(prefix="nodeagent-perm-"))
    try:
        base.chmod(0o755)
        for pod in ("open", "closed"):
            (base / "pods" / pod).mkdir(parents=True)
            (base / "pods" / pod / "0.log").write_text("x\n")
        (base / "pods").chmod(0o755)
        (base / "pods" / "open").chmod(0o755)
        (base / "pods" / "open" / "0.log").chmod(0o644)
        (base / "pods" / "closed").chmod(0o700)
        code = (
            "import json, os, sys\n"
            "from nodeagent.logs.discovery import PathMatcher, Roots, scan\n"
            "os.setgid(65534); os.setuid(65534)  # after the imports: /root is not theirs to read\n"
            f"patterns = ['{base}/pods/*/*.log', '{base}/**/*.log']\n"
            "r = scan(PathMatcher(patterns, []), Roots(patterns))\n"
            "print(json.dumps([sorted(r.files), sorted(set(map(tuple, r.unlistable)))]))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        ).stdout  # fmt: skip
        files, unlistable = json.loads(out)
        assert files == [str(base / "pods" / "open" / "0.log")]
        assert unlistable == [[str(base / "pods" / "closed"), "Permission denied"]]
    finally:
        shutil.rmtree(base)


# Directory timestamps come from the kernel's coarse clock: changes this far apart get different ones.
TICK = 0.05


def pod_tree(root: Path, pods: int) -> None:
    for i in range(pods):
        (root / f"ns_p{i}_u" / "c").mkdir(parents=True)
        (root / f"ns_p{i}_u" / "c" / "0.log").write_text("x\n")


def test_a_rescan_lists_only_the_directories_that_changed_and_still_sees_every_file(tmp_path: Path) -> None:
    pod_tree(tmp_path, 5)
    pattern = f"{tmp_path}/*/*/*.log"
    matcher, roots, listings = PathMatcher([pattern]), Roots([pattern]), Listings(racy_ns=0)
    time.sleep(TICK)
    assert len(scan(matcher, roots, listings).files) == 5
    assert listings.listed == 11  # the root, 5 pods, 5 containers
    assert set(scan(matcher, roots, listings).files) == set(glob.glob(pattern))
    assert listings.listed == 0
    time.sleep(TICK)
    new = tmp_path / "ns_p3_u" / "c" / "1.log"
    new.write_text("new\n")  # a new file deep in a tree whose upper directories look unchanged
    (tmp_path / "ns_p1_u" / "c" / "0.log").write_text("grown without a new name\n")
    result = scan(matcher, roots, listings)
    assert set(result.files) == set(glob.glob(pattern)) and str(new) in result.files
    assert listings.listed == 1
    assert result.files[str(tmp_path / "ns_p1_u" / "c" / "0.log")].size == 25  # files are still looked at
    time.sleep(TICK)
    (tmp_path / "ns_p0_u" / "c" / "0.log").rename(tmp_path / "ns_p0_u" / "c" / "0.log.1")
    pod_tree(tmp_path / "more", 1)
    (tmp_path / "more" / "ns_p0_u").rename(tmp_path / "ns_new_u")
    result = scan(matcher, roots, listings)
    assert set(result.files) == set(glob.glob(pattern))
    assert str(tmp_path / "ns_new_u" / "c" / "0.log") in result.files
    assert str(tmp_path / "ns_p0_u" / "c" / "0.log") not in result.files
    assert listings.listed == 5  # the root, the renamed file's directory, more/, the new pod, its container


def test_a_directory_changed_within_the_racy_window_is_listed_again(tmp_path: Path) -> None:
    """A listing taken while its directory may still change within the same timestamp is not kept: a file
    added within that tick would leave the directory's stat as it was."""
    pod_tree(tmp_path, 2)
    pattern = f"{tmp_path}/*/*/*.log"
    matcher, roots = PathMatcher([pattern]), Roots([pattern])
    time.sleep(TICK)
    racy = Listings(racy_ns=3_600 * 10**9)  # everything changed within the last hour is racy
    scan(matcher, roots, racy)
    scan(matcher, roots, racy)
    assert racy.listed == 5  # every time
    assert Listings().racy_ns >= 2 * 10**9  # coarser than the coarsest common timestamps (FAT: 2 s)


@pytest.mark.parametrize("pattern", GLOB_PATTERNS)
def test_scans_from_kept_listings_find_what_glob_finds(tmp_path: Path, pattern: str) -> None:
    make_tree(tmp_path)
    os.symlink(tmp_path / "deep", tmp_path / "pods" / "also-deep")
    full = f"{tmp_path}/{pattern}"
    matcher, roots, listings = PathMatcher([full]), Roots([full]), Listings(racy_ns=0)
    time.sleep(TICK)
    first = scan(matcher, roots, listings).files
    second = scan(matcher, roots, listings).files
    assert listings.listed == 0
    assert list(second) == list(first)
    assert set(second) == {p for p in glob.glob(full, recursive=True) if os.path.isfile(p)}


def test_kept_listings_still_refuse_links_out_of_the_roots(tmp_path: Path) -> None:
    """Where a link leads is looked at on every scan: a link whose target directory is itself a link
    can be turned outside without its own directory changing."""
    pods, outside = evil_pod_tree(tmp_path)
    runtime = tmp_path / "runtime"
    (runtime / "real" / "c").mkdir(parents=True)
    (runtime / "real" / "c" / "0.log").write_text("fine\n")
    os.symlink(runtime / "real", runtime / "hop")
    os.symlink(runtime / "hop", pods / "ns_hop_5")
    pattern = f"{pods}/*/*/*.log"
    matcher, roots, listings = PathMatcher([pattern]), Roots([pattern], [str(runtime)]), Listings(racy_ns=0)
    time.sleep(TICK)
    first = scan(matcher, roots, listings)
    assert set(first.files) == {str(pods / "ns_ok_1" / "c" / "0.log"), str(pods / "ns_hop_5" / "c" / "0.log")}
    (runtime / "hop").unlink()
    os.symlink(outside, runtime / "hop")  # the pods' directory is untouched
    second = scan(matcher, roots, listings)
    assert listings.listed == 0
    assert set(second.files) == {str(pods / "ns_ok_1" / "c" / "0.log")}
    assert sorted(second.refused) == [
        (str(pods / "ns_evil_2" / "c" / "0.log"), str(outside / "shadow")),
        (str(pods / "ns_evil_3"), str(outside)),
        (str(pods / "ns_hop_5"), str(outside)),
    ]


def test_directories_no_scan_reaches_are_forgotten(tmp_path: Path) -> None:
    pod_tree(tmp_path, 3)
    pattern = f"{tmp_path}/*/*/*.log"
    matcher, roots, listings = PathMatcher([pattern]), Roots([pattern]), Listings(racy_ns=0)
    time.sleep(TICK)
    scan(matcher, roots, listings)
    shutil.rmtree(tmp_path / "ns_p1_u")
    scan(matcher, roots, listings)
    assert listings.listed == 1  # the root
    assert len(listings) == 5  # the root, two pods, two containers


MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["add_file", "remove_file", "add_dir", "rename_file", "remove_dir", "link_dir"]),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=30, deadline=None)
@given(mutations=MUTATIONS, pattern=st.sampled_from(["*/*/*.log", "**/*.log", "*/*.log"]))
def test_a_scan_from_kept_listings_finds_what_a_fresh_scan_finds(
    mutations: list[tuple[str, int]], pattern: str
) -> None:
    """Whatever changes in the tree after the listings were kept, the next scan agrees with a fresh one."""
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        pod_tree(root, 3)
        full = f"{root}/{pattern}"
        matcher, roots, listings = PathMatcher([full]), Roots([full]), Listings(racy_ns=0)
        time.sleep(TICK)  # the tree's last change is a timestamp tick behind the listings kept
        scan(matcher, roots, listings)
        for what, n in mutations:
            directories = sorted(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())
            files = sorted(p for p in root.rglob("*.log") if p.is_file() and not p.is_symlink())
            where = directories[n % len(directories)] if directories else root
            if what == "add_file":
                (where / f"new{n}.log").write_text("x\n")
            elif what == "remove_file" and files:
                files[n % len(files)].unlink()
            elif what == "add_dir":
                (where / f"d{n}").mkdir(exist_ok=True)
                (where / f"d{n}" / "0.log").write_text("x\n")
            elif what == "rename_file" and files:
                files[n % len(files)].rename(where / f"moved{n}.log")
            elif what == "remove_dir" and directories:
                shutil.rmtree(where, ignore_errors=True)
            elif (
                what == "link_dir" and directories and not os.path.lexists(root / f"link{n}")
            ):  # dangling too
                os.symlink(where, root / f"link{n}")
        kept = scan(matcher, roots, listings)
        fresh = scan(matcher, roots)
        assert sorted(kept.files) == sorted(fresh.files)
        assert sorted(kept.refused) == sorted(fresh.refused)


@settings(max_examples=300, deadline=None)
@given(
    exclude=st.lists(st.text(alphabet="ab.*?-x0/", min_size=1, max_size=8), max_size=4),
    path=st.text(alphabet="ab.-x0/", min_size=1, max_size=12),
)
def test_excludes_are_each_pattern_by_name_or_by_path(exclude: list[str], path: str) -> None:
    """The excludes are matched as one regex per kind: that is the same as trying each pattern."""
    name = os.path.basename(path)
    expected = any(glob_to_regex(p).match(path if "/" in p else name) for p in exclude)
    assert PathMatcher([], exclude).excluded(path) == expected
