"""The two watch backends (nodeagent.logs.watch): inotify events and stat polling, on real files."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from nodeagent.logs.identity import file_id
from nodeagent.logs.watch import Change
from nodeagent.logs.watch.inotify import InotifyWatcher
from nodeagent.logs.watch.poll import FileStatus, PollTarget, StatPoller, poll_files
from tests.logs.conftest import eventually


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
