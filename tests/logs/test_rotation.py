"""Rotation in all its forms, with real renames, truncations, deletions and Debian's logrotate.

Every test writes numbered lines and checks that each arrives exactly once (and, across a rotation,
old before new): the failure modes other shippers are known for are lost tails of rotated files,
duplicates after copytruncate, and deleted files held open forever.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nodeagent.logs import discovery
from nodeagent.logs.reader import FileReader
from tests.conftest import require_binary
from tests.logs.conftest import MemorySink, eventually, make_config, sample, shipping, write_lines


def numbered(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix} {i:05d}" for i in range(start, start + count)]


def open_fds_to(path_fragment: str) -> list[str]:
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if path_fragment in target:
            targets.append(target)
    return targets


async def test_rename_and_create_reads_the_old_file_to_its_end_before_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log]), sink) as shipper:
        writer = open(log, "a")  # noqa: SIM115 - the writer outlives the rename, as a daemon's would
        writer.write("old 00000\n")
        writer.flush()
        await eventually(lambda: len(sink.records) == 1, what="the file found")
        writer.writelines(line + "\n" for line in numbered("old", 499, 1))
        writer.flush()
        os.rename(log, tmp_path / "app.log.1")  # most of it not read yet
        # The daemon has not reopened yet: these land in the renamed file.
        writer.writelines(line + "\n" for line in numbered("old", 500, 500))
        writer.flush()
        write_lines(log, numbered("new", 300))
        await asyncio.sleep(0.05)
        writer.writelines(line + "\n" for line in numbered("old", 100, 1000))  # still within rotate_wait
        writer.close()
        await eventually(lambda: len(sink.records) == 1400, what="all 1400 lines")
        await asyncio.sleep(0.5)  # rotate_wait passes: the old file is let go
        assert open_fds_to("app.log.1") == []
        rotated = sample("nodeagent_logs_files_rotated_total", {"input": shipper.input_name})
    messages = sink.messages()
    assert len(messages) == len(set(messages)) == 1400
    assert messages[:1100] == numbered("old", 1100)
    assert messages[1100:] == numbered("new", 300)
    assert rotated == 1


async def test_rotation_while_the_sink_is_stalled_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    sink = MemorySink()
    sink.gate.clear()
    config = make_config(tmp_path, [log], buffer_max_bytes=4096, batch_max_records=50)
    async with shipping(config, sink):
        write_lines(log, numbered("old", 2000))  # ~20 KB: far more than the buffer holds
        await asyncio.sleep(0.3)
        os.rename(log, tmp_path / "app.log.1")
        write_lines(log, numbered("new", 500))
        await asyncio.sleep(0.5)  # longer than rotate_wait: the old file must not be given up
        sink.gate.set()
        await eventually(lambda: len(sink.records) == 2500, what="all lines once the sink is back")
    assert sink.messages() == numbered("old", 2000) + numbered("new", 500)


async def test_kubelet_rotation_then_gzip(tmp_path: Path) -> None:
    container = tmp_path / "pods" / "default_web-1_9f1c" / "nginx"
    container.mkdir(parents=True)
    log = container / "0.log"
    sink = MemorySink()
    config = make_config(tmp_path, [tmp_path / "pods/*/*/*.log"], input_options={"format": "cri"})

    def cri(lines: list[str]) -> list[str]:
        return [f"2026-11-27T10:00:00.000000000Z stdout F {line}" for line in lines]

    write_lines(log, cri(numbered("first", 400)))
    async with shipping(config, sink):
        rotated = container / "0.log.20261127-100000"
        os.rename(log, rotated)
        write_lines(rotated, cri(numbered("first", 100, 400)))  # containerd still on the old file
        write_lines(log, cri(numbered("second", 400)))
        await eventually(lambda: len(sink.records) == 900, what="900 records")
        # Later kubelet compresses the rotated file; the .gz must not be read and the original goes.
        with open(rotated, "rb") as src, gzip.open(str(rotated) + ".gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        rotated.unlink()
        await eventually(lambda: open_fds_to("0.log.2026") == [], what="the rotated file closed")
        await asyncio.sleep(0.2)
    messages = sink.messages()
    assert messages == numbered("first", 500) + numbered("second", 400)
    assert sink.records[0].kubernetes == {
        "namespace": "default",
        "pod": "web-1",
        "pod_uid": "9f1c",
        "container": "nginx",
        "restart_count": 0,
    }


async def test_copytruncate_restarts_at_zero_without_duplicates(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log]), sink) as shipper:
        with open(log, "a") as writer:  # O_APPEND, as copytruncate requires of the writer
            writer.writelines(line + "\n" for line in numbered("before", 300))
            writer.flush()
            await eventually(lambda: len(sink.records) == 300, what="lines before the truncation")
            shutil.copyfile(log, tmp_path / "app.log.1")
            os.truncate(log, 0)
            # Written right away, past the old offset before the shipper looks: the changed first
            # bytes give the truncation away.
            writer.writelines(line + "\n" for line in numbered("after", 400))
            writer.flush()
            await eventually(lambda: len(sink.records) == 700, what="lines after the truncation")
        await asyncio.sleep(0.2)
        truncated = sample("nodeagent_logs_files_truncated_total", {"input": shipper.input_name})
    assert sink.messages() == numbered("before", 300) + numbered("after", 400)
    assert truncated == 1


async def test_deleted_file_is_drained_and_closed(tmp_path: Path) -> None:
    log = tmp_path / "gone.log"
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log]), sink):
        write_lines(log, numbered("line", 1))
        await eventually(lambda: len(sink.records) == 1, what="the file found")
        write_lines(log, numbered("line", 999, 1))
        log.unlink()
        await eventually(lambda: len(sink.records) == 1000, what="every line of the deleted file")
        await eventually(lambda: open_fds_to("gone.log") == [], what="the deleted file closed")
    assert sink.messages() == numbered("line", 1000)


async def test_deleted_file_is_let_go_in_bounded_time_while_the_sink_is_down(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    sink = MemorySink()
    sink.gate.clear()  # the destination hangs: nothing is acknowledged, the buffer fills
    config = make_config(tmp_path, [log], buffer_max_bytes=4096, deleted_file_timeout="400ms")
    lines = numbered("line", 5000)
    size = sum(len(line) + 1 for line in lines)
    async with shipping(config, sink) as shipper:
        write_lines(log, lines)
        await eventually(
            lambda: sample("nodeagent_logs_bytes_read_total", {"input": shipper.input_name}) > 0,
            what="some reading",
        )
        log.unlink()
        await eventually(
            lambda: open_fds_to("big.log") == [],
            timeout=5,
            what="the deleted file let go although the sink is down",
        )
        read = sample("nodeagent_logs_bytes_read_total", {"input": shipper.input_name})
        given_up = sample(
            "nodeagent_logs_bytes_given_up_total", {"input": shipper.input_name, "reason": "deleted"}
        )
        assert read < size  # backpressure held reading back
        assert given_up == size - read
        sink.gate.set()  # what was read before is still delivered
        await eventually(
            lambda: sum(len(r.message) + 1 for r in sink.records) >= read - 20, what="the buffered records"
        )
    messages = sink.messages()
    assert messages[:-1] == lines[: len(messages) - 1]
    assert lines[len(messages) - 1].startswith(messages[-1])  # the last one may be a line's head


async def test_rm_and_immediate_recreate_with_the_same_name(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [log]), sink):
        for round_ in range(3):
            write_lines(log, numbered(f"round{round_}", 1))
            await eventually(lambda round_=round_: len(sink.records) == 200 * round_ + 1, what="file found")
            write_lines(log, numbered(f"round{round_}", 199, 1))
            log.unlink()  # most of it unread, and a new file under the name right away
        write_lines(log, numbered("last", 200))
        await eventually(lambda: len(sink.records) == 800, what="every round")
        await asyncio.sleep(0.3)
    assert sink.messages() == numbered("round0", 200) + numbered("round1", 200) + numbered(
        "round2", 200
    ) + numbered("last", 200)


async def test_renamed_to_another_matching_name_just_goes_on(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    sink = MemorySink()
    config = make_config(tmp_path, [tmp_path / "app.log*"])
    async with shipping(config, sink):
        write_lines(log, numbered("a", 100))
        await eventually(lambda: len(sink.records) == 100, what="first lines")
        os.rename(log, tmp_path / "app.log.1")
        write_lines(tmp_path / "app.log.1", numbered("a", 100, 100))
        write_lines(log, numbered("b", 100))
        await eventually(lambda: len(sink.records) == 300, what="all lines")
        await asyncio.sleep(0.8)  # rescans and rotate_wait: no duplicate from the renamed file
    assert sorted(sink.messages()) == sorted(numbered("a", 200) + numbered("b", 100))
    assert len(sink.records) == 300


async def test_same_inode_with_new_content_is_a_new_file_after_restart(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, numbered("old", 100))
    sink = MemorySink()
    config = make_config(tmp_path, [log])
    async with shipping(config, sink):
        await eventually(lambda: len(sink.records) == 100, what="old content")
    inode = log.stat().st_ino
    # While the agent is down the inode gets new content, longer than the saved offset.
    write_lines(log, numbered("NEW", 300), mode="w")
    assert log.stat().st_ino == inode
    sink2 = MemorySink()
    async with shipping(config, sink2):
        await eventually(lambda: len(sink2.records) == 300, what="new content from its start")
        await asyncio.sleep(0.1)
    assert sink2.messages() == numbered("NEW", 300)


async def test_symlinked_container_logs_across_kubelet_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This tree's var/log/pods stands in for the host's: where kubelet's links may lead.
    monkeypatch.setattr(discovery, "RUNTIME_ROOTS", (str(tmp_path / "var/log/pods"),))
    pods = tmp_path / "var/log/pods/prod_api-5d9c_1111-2222/server"
    pods.mkdir(parents=True)
    containers = tmp_path / "var/log/containers"
    containers.mkdir(parents=True)
    container_id = "ab" * 32
    link = containers / f"api-5d9c_prod_server-{container_id}.log"
    os.symlink(pods / "0.log", link)  # kubelet's symlink names the path, not the inode
    sink = MemorySink()
    config = make_config(tmp_path, [containers / "*.log"], input_options={"format": "cri"})

    def cri(lines: list[str]) -> list[str]:
        return [f"2026-11-27T10:00:00.000000000Z stderr F {line}" for line in lines]

    write_lines(pods / "0.log", cri(numbered("a", 50)))
    async with shipping(config, sink):
        write_lines(pods / "0.log", cri(numbered("a", 150, 50)))
        await eventually(lambda: len(sink.records) == 200, what="lines before rotation")
        os.rename(pods / "0.log", pods / "0.log.20261127-101010")
        write_lines(pods / "0.log.20261127-101010", cri(numbered("a", 50, 200)))
        write_lines(pods / "0.log", cri(numbered("b", 200)))
        await eventually(lambda: len(sink.records) == 450, timeout=5, what="lines after rotation")
        await asyncio.sleep(0.6)
    assert sink.messages() == numbered("a", 250) + numbered("b", 200)
    assert {r.file for r in sink.records} == {str(link)}
    assert sink.records[-1].kubernetes == {
        "namespace": "prod",
        "pod": "api-5d9c",
        "container": "server",
        "container_id": container_id,
    }
    assert sink.records[-1].stream == "stderr"


def _logrotate(tmp_path: Path, log: Path, mode: str) -> None:
    binary = require_binary("logrotate", "/usr/sbin/logrotate")
    conf = tmp_path / "logrotate.conf"
    conf.write_text(f"{log} {{\n    rotate 3\n    {mode}\n    missingok\n    nocompress\n}}\n")
    os.chmod(conf, 0o644)
    subprocess.run(
        [binary, "--force", "--state", str(tmp_path / "logrotate.state"), str(conf)],
        check=True,
        timeout=30,
        capture_output=True,
    )


async def test_logrotate_create_mode(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    log = logs / "daemon.log"
    log.touch()
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [logs / "*.log"]), sink):
        writer = open(log, "a")  # noqa: SIM115
        for round_ in range(3):
            writer.writelines(line + "\n" for line in numbered(f"r{round_}", 300))
            writer.flush()
            # A file the shipper never saw under a matching name is out of reach: let it see this one.
            await eventually(lambda round_=round_: len(sink.records) >= 350 * round_ + 1, what="file found")
            await asyncio.to_thread(_logrotate, tmp_path, log, "create")
            # The daemon writes a little more to the old file before its HUP makes it reopen.
            writer.writelines(line + "\n" for line in numbered(f"r{round_}", 50, 300))
            writer.close()
            writer = open(log, "a")  # noqa: SIM115
        writer.writelines(line + "\n" for line in numbered("end", 10))
        writer.close()
        assert (logs / "daemon.log.1").exists() and (logs / "daemon.log.3").exists()
        await eventually(lambda: len(sink.records) == 3 * 350 + 10, what="every line")
        await asyncio.sleep(0.5)
    expected = [line for r in range(3) for line in numbered(f"r{r}", 350)] + numbered("end", 10)
    assert sink.messages() == expected


async def test_logrotate_copytruncate_mode(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    log = logs / "daemon.log"
    log.touch()
    sink = MemorySink()
    async with shipping(make_config(tmp_path, [logs / "*.log"]), sink) as shipper:
        with open(log, "a") as writer:
            total = 0
            for round_ in range(3):
                writer.writelines(line + "\n" for line in numbered(f"r{round_}", 300))
                writer.flush()
                total += 300
                # copytruncate loses what is written between its copy and its truncate, by design;
                # the shipper must lose nothing else and duplicate nothing.
                await eventually(lambda total=total: len(sink.records) == total, what="lines before rotating")
                await asyncio.to_thread(_logrotate, tmp_path, log, "copytruncate")
            writer.writelines(line + "\n" for line in numbered("end", 10))
            writer.flush()
        assert (logs / "daemon.log.1").stat().st_size > 0
        await eventually(lambda: len(sink.records) == 910, what="every line")
        await asyncio.sleep(0.3)
        truncations = sample("nodeagent_logs_files_truncated_total", {"input": shipper.input_name})
    expected = [line for r in range(3) for line in numbered(f"r{r}", 300)] + numbered("end", 10)
    assert sink.messages() == expected
    assert truncations == 3


def test_reader_module_has_the_lifecycle_the_tests_rely_on() -> None:
    assert hasattr(FileReader, "run") and hasattr(FileReader, "close")


async def test_a_file_rotated_while_the_agent_was_down_is_finished_before_its_successor(
    tmp_path: Path,
) -> None:
    log = tmp_path / "app.log"
    config = make_config(tmp_path, [log])
    write_lines(log, numbered("old", 500))
    first = MemorySink()
    async with shipping(config, first):
        await eventually(lambda: len(first.records) == 500, what="the first 500 lines")
    # While the agent is down: more lines, then logrotate-style rename + create.
    write_lines(log, numbered("old", 300, 500))
    os.rename(log, tmp_path / "app.log.1")
    write_lines(log, numbered("new", 200))
    second = MemorySink()
    async with shipping(config, second):
        await eventually(lambda: len(second.records) == 500, what="the rest of the old file and the new one")
        await asyncio.sleep(0.5)
    assert second.messages() == numbered("old", 300, 500) + numbered("new", 200)
    assert {r.file for r in second.records} == {str(log)}


async def test_a_closed_idle_file_whose_inode_gets_new_content_is_read_again_at_once(tmp_path: Path) -> None:
    """An idle file closed by close_inactive, then the same inode under the same name with other first
    bytes (rewritten, or a new file that got the inode): its lines come without waiting for a rescan."""
    (tmp_path / "logs").mkdir()  # apart from the state directory: its changes would make the reader rescan
    log = tmp_path / "logs" / "app.log"
    sink = MemorySink()
    config = make_config(tmp_path, [log], close_inactive="200ms", rescan_interval="60s")
    async with shipping(config, sink):
        write_lines(log, numbered("old", 100))
        await eventually(lambda: len(sink.records) == 100, what="the first lines")
        await eventually(lambda: open_fds_to("app.log") == [], what="the idle file closed")
        inode = log.stat().st_ino
        write_lines(log, numbered("NEW", 300), mode="w")
        assert log.stat().st_ino == inode
        await eventually(lambda: len(sink.records) == 400, what="the new content")
        await asyncio.sleep(0.3)
    assert sink.messages() == numbered("old", 100) + numbered("NEW", 300)


async def test_a_deleted_file_is_read_while_its_writer_goes_on(tmp_path: Path) -> None:
    """Deleted files get the grace renamed ones get: read while written, closed rotate_wait after the
    last growth."""
    log = tmp_path / "app.log"
    sink = MemorySink()
    config = make_config(tmp_path, [log], rotate_wait="300ms", deleted_file_timeout="5s")
    async with shipping(config, sink):
        with open(log, "a", buffering=1) as writer:
            writer.write("first\n")
            await eventually(lambda: len(sink.records) == 1, what="the file found")
            log.unlink()
            for line in numbered("later", 300):  # about 1.5 s of writing into the deleted file
                writer.write(line + "\n")
                await asyncio.sleep(0.005)
            await eventually(lambda: len(sink.records) == 301, what="every line written after the delete")
        await eventually(lambda: open_fds_to("app.log") == [], what="the deleted file closed")
    assert sink.messages() == ["first", *numbered("later", 300)]


async def test_a_link_target_recreated_after_the_link_dangled_is_found_without_a_rescan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A /var/log/containers-only input: nothing watches /var/log/pods, so the target's return is noticed
    by looking at dangling links again (every poll_interval), not by the rescan."""
    monkeypatch.setattr(discovery, "RUNTIME_ROOTS", (str(tmp_path / "var/log/pods"),))
    pods = tmp_path / "var/log/pods/prod_api-5d9c_1111-2222/server"
    pods.mkdir(parents=True)
    containers = tmp_path / "var/log/containers"
    containers.mkdir(parents=True)
    link = containers / f"api-5d9c_prod_server-{'cd' * 32}.log"
    os.symlink(pods / "0.log", link)
    sink = MemorySink()
    config = make_config(tmp_path, [containers / "*.log"], rescan_interval="60s")
    write_lines(pods / "0.log", numbered("a", 10))
    async with shipping(config, sink):
        await eventually(lambda: len(sink.records) == 10, what="the first lines")
        (pods / "0.log").unlink()
        await eventually(lambda: open_fds_to("0.log") == [], what="the deleted target let go")
        await asyncio.sleep(1.0)  # the link dangles
        write_lines(pods / "0.log", numbered("b", 20))
        await eventually(lambda: len(sink.records) == 30, timeout=5, what="the recreated target's lines")
    assert sink.messages() == numbered("a", 10) + numbered("b", 20)
