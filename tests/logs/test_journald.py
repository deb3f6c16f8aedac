"""The journald input on real journal files, written by Debian's systemd-journal-remote from the journal
export format (what ``journalctl --output=export`` prints) and read by the real journalctl: records and
their fields, restarts from the acknowledged cursor, rotation, a corrupted tail, filters, hostile
messages, a journalctl that dies."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import struct
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from nodeagent.config.logs import LogsConfig
from nodeagent.logs.encoding import encode_json_lines
from nodeagent.logs.journald import encode_export
from tests.conftest import require_binary
from tests.logs.conftest import MemorySink, eventually, make_config, sample, shipping, unique_name

BOOT_ID = "0123456789abcdef0123456789abcdef"
_clock = itertools.count(1)


def journal_remote() -> str:
    return require_binary("systemd-journal-remote", "/lib/systemd/systemd-journal-remote")


def journalctl() -> str:
    return require_binary("journalctl")


def entry(message: bytes | str, *, unit: str = "kubelet.service", priority: int = 6, **extra: str) -> list:
    """One entry's fields; times increase from one call to the next (journal order = write order)."""
    tick = next(_clock)
    fields: list[tuple[str, bytes]] = [
        ("__REALTIME_TIMESTAMP", str(1_700_000_000_000_000 + tick).encode()),
        ("__MONOTONIC_TIMESTAMP", str(tick).encode()),
        ("_BOOT_ID", BOOT_ID.encode()),
        ("MESSAGE", message.encode() if isinstance(message, str) else message),
        ("PRIORITY", str(priority).encode()),
        ("_SYSTEMD_UNIT", unit.encode()),
        ("_PID", b"4242"),
        ("_HOSTNAME", b"node-7"),
        ("SYSLOG_IDENTIFIER", unit.split(".")[0].encode()),
        ("_COMM", unit.split(".")[0].encode()),
    ]
    fields += [(name, value.encode()) for name, value in extra.items()]
    return fields


def write_journal(path: Path, entries: Iterable[Sequence[tuple[str, bytes]]]) -> None:
    """Append ``entries`` to the journal file ``path`` (created when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    export = path.with_name(path.name + ".export")
    export.write_bytes(b"".join(encode_export(fields) for fields in entries))
    try:
        subprocess.run(
            [journal_remote(), f"--output={path}", str(export)], check=True, capture_output=True, timeout=60
        )
    finally:
        export.unlink()


def messages_in(directory: Path) -> list[str]:
    """The MESSAGE of every entry the real journalctl reads from the directory, in order ("" for an
    entry whose MESSAGE it cannot read)."""
    out = subprocess.run(
        [journalctl(), f"--directory={directory}", "--output=json", "--no-pager"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    return [json.loads(line).get("MESSAGE", "") for line in out.splitlines()]


# ---------------------------------------------------------------------------------------------------
# The input, run in the real shipper against real journal files


LOGS_KEYS = ("batch_max_records", "checkpoint_interval", "drain_timeout", "batch_timeout", "buffer_max_bytes")


def journald_config(tmp_path: Path, directory: Path, **options: Any) -> LogsConfig:
    name = options.pop("name", None) or unique_name("journal")
    tuning = {k: options.pop(k) for k in list(options) if k in LOGS_KEYS}
    journal_input = {
        "name": name,
        "type": "journald",
        "directory": str(directory),
        "journalctl": journalctl(),
        "read_from": "head",
        "restart_backoff": "50ms",
        "restart_max_backoff": "200ms",
        **options,
    }
    return make_config(tmp_path, [], inputs=[journal_input], **tuning)


async def arrive(sink: MemorySink, count: int, timeout: float = 15) -> None:
    await eventually(
        lambda: len(sink.records) >= count, timeout, f"{count} records (have {len(sink.records)})"
    )


async def test_records_carry_the_journal_fields(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    write_journal(directory / "system.journal", [entry("kubelet started", priority=3, _UID="0")])
    sink = MemorySink()
    async with shipping(journald_config(tmp_path, directory), sink):
        await arrive(sink, 1)
    (record,) = sink.records
    assert record.message == "kubelet started"
    assert record.stream == "stderr"  # PRIORITY 3 (err)
    assert record.file == "journal"
    assert record.node == "node-1"
    assert record.time.endswith("Z") and len(record.time) == 30
    assert record.fields is not None
    journal = record.fields["journal"]
    assert journal["unit"] == "kubelet.service"
    assert journal["pid"] == 4242
    assert journal["uid"] == 0
    assert journal["hostname"] == "node-7"
    assert journal["identifier"] == "kubelet"
    assert journal["comm"] == "kubelet"
    assert journal["boot_id"] == BOOT_ID
    assert journal["priority"] == 3 and journal["severity"] == "err"
    line = json.loads(encode_json_lines([record]))
    assert line["journal"]["unit"] == "kubelet.service" and line["message"] == "kubelet started"


async def test_a_restart_resumes_after_the_acknowledged_cursor(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = directory / "system.journal"
    write_journal(journal, [entry(f"first {n}") for n in range(300)])
    config = journald_config(tmp_path, directory)
    sink = MemorySink()
    async with shipping(config, sink):
        await arrive(sink, 300)
    write_journal(journal, [entry(f"second {n}") for n in range(200)])  # while the agent is stopped
    async with shipping(config, sink):
        await arrive(sink, 500)
        write_journal(journal, [entry(f"third {n}") for n in range(100)])  # while it follows
        await arrive(sink, 600)
        await asyncio.sleep(0.3)
    expected = [f"first {n}" for n in range(300)] + [f"second {n}" for n in range(200)]
    expected += [f"third {n}" for n in range(100)]
    assert sink.messages() == expected  # each once, in order
    state = json.loads((tmp_path / "state" / "logs-checkpoints.json").read_text())
    assert [j["input"] for j in state["journals"]] == [config.journals[0].name]


async def test_unacknowledged_records_are_read_again_after_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    write_journal(directory / "system.journal", [entry(f"m {n}") for n in range(50)])
    config = journald_config(tmp_path, directory, drain_timeout="200ms")
    down = MemorySink()
    down.fail_with = ConnectionError("sink down")
    async with shipping(config, down):
        await eventually(lambda: down.attempts >= 1, what="a send attempt")
    assert down.records == []
    sink = MemorySink()
    async with shipping(config, sink):
        await arrive(sink, 50)
        await asyncio.sleep(0.3)
    assert sink.messages() == [f"m {n}" for n in range(50)]


async def test_read_from_tail_skips_the_old_entries_and_keeps_its_place(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = directory / "system.journal"
    write_journal(journal, [entry(f"old {n}") for n in range(20)])
    config = journald_config(tmp_path, directory, read_from="tail")
    sink = MemorySink()
    async with shipping(config, sink):
        await eventually(lambda: (tmp_path / "state" / "logs-checkpoints.json").exists(), what="a commit")
        write_journal(journal, [entry("new 0")])
        await arrive(sink, 1)
    write_journal(journal, [entry("new 1")])  # while stopped: the saved cursor, not the tail, applies
    async with shipping(config, sink):
        await arrive(sink, 2)
        await asyncio.sleep(0.3)
    assert sink.messages() == ["new 0", "new 1"]


async def test_a_new_journal_file_in_the_directory_is_followed(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    write_journal(directory / "system.journal", [entry("in the first file")])
    sink = MemorySink()
    async with shipping(journald_config(tmp_path, directory), sink):
        await arrive(sink, 1)
        # What journald does when it rotates: the active file is archived, a new one takes its place.
        os.rename(directory / "system.journal", directory / "system@0001-0001.journal")
        write_journal(directory / "system.journal", [entry("in the new file")])
        write_journal(directory / "user-1000.journal", [entry("in another new file")])
        await arrive(sink, 3)
        await asyncio.sleep(0.3)
    assert sink.messages() == ["in the first file", "in the new file", "in another new file"]


async def test_a_corrupted_journal_tail_costs_only_the_damaged_entries(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    garbled = directory / "system@0001-0001.journal"
    truncated = directory / "system@0001-0002.journal"
    write_journal(garbled, [entry(f"old {n}") for n in range(200)])
    write_journal(truncated, [entry(f"lost {n}") for n in range(50)])
    end = _data_end(garbled)
    with open(garbled, "r+b") as handle:  # the last entries' objects, as a crash mid-write leaves them
        handle.seek(end - 3000)
        handle.write(os.urandom(3000))
    os.truncate(truncated, _data_end(truncated) - 1000)
    survivors = messages_in(directory)
    assert 0 < len(survivors) < 200  # really damaged, as journalctl sees it
    write_journal(directory / "system.journal", [entry(f"new {n}") for n in range(10)])
    sink = MemorySink()
    async with shipping(journald_config(tmp_path, directory), sink):
        await arrive(sink, len(survivors) + 10)
        await asyncio.sleep(0.3)
    assert sink.messages() == messages_in(directory)
    assert sink.messages()[: len(survivors)] == survivors
    assert sink.messages()[-10:] == [f"new {n}" for n in range(10)]


def _data_end(journal: Path) -> int:
    """Where a journal file's last object ends (header field tail_object_offset, then that object's
    size; see systemd's journal-def.h)."""
    with open(journal, "rb") as handle:
        header = handle.read(256)
        (tail,) = struct.unpack_from("<Q", header, 136)
        handle.seek(tail + 8)
        (size,) = struct.unpack("<Q", handle.read(8))
    return tail + size


async def test_units_include_and_exclude_choose_the_entries(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    write_journal(
        directory / "system.journal",
        [
            entry("kubelet info", unit="kubelet.service"),
            entry("containerd info", unit="containerd.service"),
            entry("cron info", unit="cron.service"),
            entry("kubelet debug", unit="kubelet.service", priority=7),
            entry("kubelet noisy", unit="kubelet.service", NOISE="yes"),
            entry("kubelet last", unit="kubelet.service"),
        ],
    )
    config = journald_config(
        tmp_path,
        directory,
        units=["kubelet", "containerd.service"],
        include={"PRIORITY": [5, 6]},
        exclude={"NOISE": "yes"},
    )
    sink = MemorySink()
    async with shipping(config, sink):
        await arrive(sink, 3)
        await asyncio.sleep(0.5)
    assert sink.messages() == ["kubelet info", "containerd info", "kubelet last"]
    name = config.journals[0].name
    assert sample("nodeagent_logs_journal_entries_excluded_total", {"input": name}) == 1


async def test_hostile_messages_are_cut_and_survived(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    big = b"x" * (3 * 1024 * 1024)
    binary = bytes(range(256)) * 4 + b"\n\x00\xff\xfe"
    write_journal(directory / "system.journal", [entry(big), entry(binary), entry("after")])
    config = journald_config(tmp_path, directory, max_message_bytes="64KiB")
    sink = MemorySink()
    async with shipping(config, sink):
        await arrive(sink, 3)
    cut, raw, after = sink.records
    assert cut.message == "x" * 65536
    assert raw.message == binary.decode("utf-8", "replace")
    assert after.message == "after"
    assert sample("nodeagent_logs_lines_truncated_total", {"input": config.journals[0].name}) == 1
    encode_json_lines(sink.records)  # every message encodes


async def test_journalctl_that_dies_is_run_again_from_where_it_was(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = directory / "system.journal"
    write_journal(journal, [entry(f"a {n}") for n in range(10)])
    config = journald_config(tmp_path, directory)
    name = config.journals[0].name
    sink = MemorySink()
    async with shipping(config, sink):
        await arrive(sink, 10)
        child = _journalctl_children()
        assert len(child) == 1
        os.kill(child[0], signal.SIGKILL)
        await eventually(lambda: sample("nodeagent_logs_journalctl_restarts_total", {"input": name}) >= 1)
        write_journal(journal, [entry(f"b {n}") for n in range(10)])
        await arrive(sink, 20)
        await asyncio.sleep(0.3)
        follower = _journalctl_children()
    assert sink.messages() == [f"a {n}" for n in range(10)] + [f"b {n}" for n in range(10)]
    assert not _journalctl_children()  # stopped with the agent
    for pid in follower:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


def _journalctl_children() -> list[int]:
    """PIDs of this process's journalctl children."""
    me = os.getpid()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        comm_end = stat.rindex(")")
        comm = stat[stat.index("(") + 1 : comm_end]
        fields = stat[comm_end + 2 :].split()
        if comm == "journalctl" and int(fields[1]) == me and fields[0] != "Z":
            found.append(int(proc.name))
    return found


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rindex(")") + 2 :].split()[0]


async def test_a_missing_journalctl_is_retried_and_shutdown_is_prompt(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    write_journal(directory / "system.journal", [entry("m")])
    config = journald_config(tmp_path, directory, journalctl=str(tmp_path / "no-such-journalctl"))
    name = config.journals[0].name
    async with shipping(config, MemorySink()):
        await eventually(lambda: sample("nodeagent_logs_journalctl_restarts_total", {"input": name}) >= 2)


async def test_a_full_buffer_does_not_hold_up_shutdown(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    write_journal(directory / "system.journal", [entry(f"m {n} " + "y" * 500) for n in range(2000)])
    config = journald_config(tmp_path, directory, buffer_max_bytes="16KiB", drain_timeout="200ms")
    stalled = MemorySink()
    stalled.gate.clear()  # a destination that never answers: the buffer fills, reading waits
    async with shipping(config, stalled) as shipper:
        await eventually(lambda: stalled.attempts >= 1, what="a send attempt")
        await asyncio.sleep(0.3)
        await shipper.stop(timeout=5)  # returns: the waiting reader gives up, journalctl is stopped
    assert not _journalctl_children()
    sink = MemorySink()
    async with shipping(config, sink):  # nothing was committed: everything comes again
        await arrive(sink, 2000)
    assert len(sink.records) == 2000


async def test_a_cursor_journalctl_refuses_is_dropped(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    write_journal(directory / "system.journal", [entry(f"m {n}") for n in range(5)])
    config = journald_config(tmp_path, directory)
    state = tmp_path / "state" / "logs-checkpoints.json"
    state.parent.mkdir(parents=True)
    name = config.journals[0].name
    state.write_text(
        json.dumps({"version": 1, "files": [], "journals": [{"input": name, "cursor": "garbage"}]})
    )
    sink = MemorySink()
    async with shipping(config, sink):
        await arrive(sink, 5)  # from the head, as read_from says
        await asyncio.sleep(0.3)
    assert sink.messages() == [f"m {n}" for n in range(5)]
    assert json.loads(state.read_text())["journals"][0]["cursor"] != "garbage"


async def test_input_filters_apply_and_positions_pass_what_they_drop(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    journal = directory / "system.journal"
    write_journal(
        journal, [entry('{"level":"info","n":0}'), entry("drop 1"), entry("keep 2"), entry("drop 3")]
    )
    filters = [{"type": "drop", "field": "message", "regex": "^drop"}, {"type": "parse_json"}]
    config = journald_config(tmp_path, directory, filters=filters)
    sink = MemorySink()
    async with shipping(config, sink):
        await arrive(sink, 2)
        await asyncio.sleep(0.5)  # the dropped last entry's cursor is committed too
    write_journal(journal, [entry("keep 4")])
    async with shipping(config, sink):
        await arrive(sink, 3)
        await asyncio.sleep(0.3)
    assert sink.messages() == ['{"level":"info","n":0}', "keep 2", "keep 4"]
    first = sink.records[0].fields
    assert first is not None and first["level"] == "info" and first["journal"]["unit"] == "kubelet.service"
