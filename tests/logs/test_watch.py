"""The two watch backends (nodeagent.logs.watch): inotify events and stat polling, on real files."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nodeagent.logs.identity import file_id
from nodeagent.logs.watch import Change
from nodeagent.logs.watch import inotify as inotify_module
from nodeagent.logs.watch.inotify import Inotify, InotifyWatcher
from nodeagent.logs.watch.poll import FileStatus, PollTarget, StatPoller, poll_files
from tests.conftest import ROOT, require_binary
from tests.logs.conftest import MemorySink, eventually, make_config, sample, shipping, write_lines


async def test_inotify_reports_files_in_new_subdirectories_once_settled(tmp_path: Path) -> None:
    seen: list[Change] = []
    root, missing = tmp_path / "root", tmp_path / "missing"
    root.mkdir()
    watcher = InotifyWatcher([str(root), str(missing)], seen.extend, retry_interval=0.2)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.settled.wait(), 5)
        assert watcher.available
        assert watcher.covers(str(root / "a" / "b.log"))
        assert not watcher.covers(str(missing / "x.log"))  # not there yet: not watched
        (root / "pod" / "c").mkdir(parents=True)
        await asyncio.sleep(0.3)  # the new directory gets its own watch
        (root / "pod" / "c" / "0.log").write_text("x\n")
        await eventually(lambda: ("added", str(root / "pod" / "c" / "0.log")) in seen, what="the event")
        missing.mkdir()
        assert await asyncio.to_thread(watcher.refresh)  # a root appeared: the watch restarts
        await eventually(lambda: watcher.covers(str(missing / "x.log")), what="the new root watched")
    finally:
        watcher.stop()
        await asyncio.wait_for(task, 5)


async def test_inotify_reports_a_file_written_all_the_time_in_batches_and_again_after_a_pause(
    tmp_path: Path,
) -> None:
    batches: list[list[Change]] = []
    log_file = tmp_path / "0.log"
    log_file.write_bytes(b"")
    watcher = InotifyWatcher([str(tmp_path)], batches.append, retry_interval=0.2)
    task = asyncio.create_task(watcher.run())
    modified = ("modified", str(log_file))
    try:
        await asyncio.wait_for(watcher.settled.wait(), 5)
        with log_file.open("ab", buffering=0) as out:
            for _ in range(60):  # a writer that never pauses long: reads while the burst goes on
                out.write(b"line\n")
                await asyncio.sleep(0.01)
            await eventually(lambda: sum(modified in b for b in batches) >= 2, what="several batches")
            await asyncio.sleep(0.5)  # quiet: the watcher goes back to waiting for the next event
            seen = len(batches)
            out.write(b"after the pause\n")
            await eventually(lambda: any(modified in b for b in batches[seen:]), what="the late write")
        assert all(batches), "no empty batches"
    finally:
        watcher.stop()
        await asyncio.wait_for(task, 5)


def test_poll_files_sees_growth_deletion_and_a_moved_path(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\n")
    fd = os.open(log, os.O_RDONLY)
    try:
        identity = file_id(os.fstat(fd))
        [status] = poll_files([PollTarget("k", fd, str(log), identity)])
        assert (status.key, status.size, status.nlink, status.moved) == ("k", 4, 1, False)
        os.rename(log, tmp_path / "app.log.1")
        [status] = poll_files([PollTarget("k", fd, str(log), identity)])
        assert status.moved
        [status] = poll_files([PollTarget("k", fd, None, identity)])  # path not checked
        assert not status.moved
        os.unlink(tmp_path / "app.log.1")
        [status] = poll_files([PollTarget("k", fd, None, identity)])
        assert status.nlink == 0
    finally:
        os.close(fd)


async def test_stat_poller_polls_what_it_is_given_every_interval(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\n")
    fd = os.open(log, os.O_RDONLY)
    statuses: list[FileStatus[str]] = []
    poller = StatPoller(
        0.05, lambda: [PollTarget("app", fd, str(log), file_id(os.fstat(fd)))], statuses.extend
    )
    task = asyncio.create_task(poller.run())
    try:
        await eventually(lambda: len(statuses) >= 2, what="two polls")
        with open(log, "a") as fh:
            fh.write("two\n")
        await eventually(lambda: statuses[-1].size == 8, what="the growth")
    finally:
        poller.stop()
        await asyncio.wait_for(task, 5)
        os.close(fd)


async def test_inotify_never_follows_a_directory_link_out_of_the_tree(tmp_path: Path) -> None:
    """A pod linking its log directory to / must not make the agent watch the host's whole tree."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (outside / "deep" / "er").mkdir(parents=True)
    (root / "pod").mkdir(parents=True)
    os.symlink(outside, root / "pod" / "link")
    seen: list[Change] = []
    watcher = InotifyWatcher([str(root)], seen.extend, retry_interval=0.2)
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.wait_for(watcher.settled.wait(), 5)
        assert sorted(watcher._directories.values()) == [str(root), str(root / "pod")]
        (outside / "deep" / "er" / "x.log").write_text("x\n")
        (root / "pod" / "y.log").write_text("y\n")
        await eventually(lambda: ("added", str(root / "pod" / "y.log")) in seen, what="the event inside")
        assert not [path for _, path in seen if "link" in path or "outside" in path]
    finally:
        watcher.stop()
        await asyncio.wait_for(task, 5)


class Scarce(Inotify):
    """An inotify instance that runs out of watches after ``limit`` of them (as past
    fs.inotify.max_user_watches): inotify_add_watch fails with ENOSPC."""

    limit = 2

    def __init__(self) -> None:
        super().__init__()
        self.added = 0

    def add(self, directory: str) -> int:
        if self.added >= self.limit:
            raise OSError(errno.ENOSPC, "inotify_add_watch: No space left on device", directory)
        self.added += 1
        return super().add(directory)


async def test_out_of_watches_warns_once_and_lists_the_unwatched_directories(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in "abc":
        (tmp_path / name).mkdir()
    seen: list[Change] = []
    Scarce.limit = 2
    watcher = InotifyWatcher(
        [str(tmp_path)], seen.extend, retry_interval=0.5, poll_interval=0.05, inotify=Scarce
    )
    task = asyncio.create_task(watcher.run())
    try:
        with caplog.at_level(logging.WARNING, logger="nodeagent.logs.watch"):
            await asyncio.wait_for(watcher.settled.wait(), 5)
            assert watcher.available
            assert len(watcher.unwatched) == 2  # the root and one directory have watches
            for directory in watcher.unwatched:
                assert not watcher.covers(os.path.join(directory, "x.log"))  # its files get polled
            for directory in sorted(watcher.unwatched):
                Path(directory, "new.log").write_text("x\n")
                await eventually(
                    lambda directory=directory: ("added", os.path.join(directory, "new.log")) in seen,
                    timeout=2,
                    what="a new file in an unwatched directory reported",
                )
            unwatched = sorted(watcher.unwatched)
            Path(unwatched[0], "new.log").unlink()
            await eventually(
                lambda: ("deleted", os.path.join(unwatched[0], "new.log")) in seen, what="deletion"
            )
            (Path(unwatched[1]) / "sub").mkdir()  # still out of watches: listed too
            await eventually(
                lambda: os.path.join(unwatched[1], "sub") in watcher.unwatched, what="new directory"
            )
        warnings = [r for r in caplog.records if "max_user_watches" in r.getMessage()]
        assert len(warnings) == 1
        Scarce.limit = 100  # the sysctl was raised: the directories are watched again
        await eventually(lambda: not watcher.unwatched, timeout=3, what="watches again")
        assert all(watcher.covers(os.path.join(d, "x.log")) for d in unwatched)
    finally:
        watcher.stop()
        await asyncio.wait_for(task, 5)


async def test_the_reader_polls_what_it_has_no_watch_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of watches beyond the root: a file in an unwatched directory is still read within a poll, a
    new one found without the rescan, and the unwatched directories counted in a metric."""
    monkeypatch.setattr(inotify_module, "Inotify", Scarce)
    Scarce.limit = 1
    logs = tmp_path / "logs"
    (logs / "a").mkdir(parents=True)
    write_lines(logs / "a" / "app.log", ["old"])
    sink = MemorySink()
    config = make_config(tmp_path, [logs / "*" / "*.log"], rescan_interval="60s")
    async with shipping(config, sink):
        await eventually(lambda: sink.messages() == ["old"], what="the existing file")
        write_lines(logs / "a" / "app.log", ["appended"])
        await eventually(
            lambda: len(sink.records) == 2, timeout=3, what="an append in an unwatched directory"
        )
        (logs / "b").mkdir()  # a new directory, out of watches too
        await asyncio.sleep(0.3)
        write_lines(logs / "b" / "new.log", ["in a new directory"])
        await eventually(
            lambda: len(sink.records) == 3, timeout=3, what="a file in a new unwatched directory"
        )
        await eventually(
            lambda: sample("nodeagent_logs_directories_unwatched") == 2, timeout=3, what="the metric"
        )
    assert sink.messages() == ["old", "appended", "in a new directory"]


def test_a_real_inotify_watch_limit_inside_a_user_namespace(tmp_path: Path) -> None:
    """The kernel's own ENOSPC: in a user namespace of its own (the machine's sysctl stays as it is),
    /proc/sys/user/max_inotify_watches is lowered to 3; the watcher reports the rest unwatched and
    lists it."""
    unshare = require_binary("unshare")
    probe = subprocess.run([unshare, "-Ur", "true"], capture_output=True, check=False)
    if probe.returncode != 0 and not os.environ.get("CI"):
        pytest.skip(f"no user namespaces here: {probe.stderr.decode(errors='replace')[:200]}")
    for name in "abcde":
        (tmp_path / name).mkdir()
    script = f"""
import asyncio, os
with open("/proc/sys/user/max_inotify_watches", "w") as limit:
    limit.write("3")
from nodeagent.logs.watch.inotify import InotifyWatcher
seen = []
async def main():
    watcher = InotifyWatcher([{str(tmp_path)!r}], seen.extend, retry_interval=60, poll_interval=0.05)
    task = asyncio.create_task(watcher.run())
    await asyncio.wait_for(watcher.settled.wait(), 5)
    unwatched = sorted(watcher.unwatched)
    path = os.path.join(unwatched[0], "new.log")
    open(path, "w").close()
    for _ in range(100):
        if ("added", path) in seen:
            break
        await asyncio.sleep(0.02)
    print(len(unwatched), ("added", path) in seen)
    watcher.stop()
    await task
asyncio.run(main())
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [unshare, "-Ur", sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3", "True"], done.stderr[-2000:]
    assert "fs.inotify.max_user_watches" in done.stderr
