"""Sink registry and option checks; stdout, file and syslog (against a local TCP server) sinks."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import os
import sys
from pathlib import Path

import pytest

from nodeagent.logs.record import Record
from nodeagent.logs.sinks import SINK_TYPES, make_sink
from nodeagent.logs.sinks import file as file_sink_module
from nodeagent.logs.sinks.base import RetryableSinkError
from nodeagent.logs.sinks.file import FileSink
from nodeagent.logs.sinks.stdout import StdoutSink
from nodeagent.logs.sinks.syslog import (
    SyslogSink,
    escape_param_value,
    format_message,
    frame,
    parse_address,
    structured_data,
)

KUBE = {"namespace": "default", "pod": "web-0", "pod_uid": "u-1", "container": "nginx", "restart_count": 1}


def record(
    message: str,
    *,
    stream: str | None = "stdout",
    kubernetes: dict | None = None,
    time: str = "2026-01-02T03:04:05.123456789Z",
) -> Record:
    return Record(
        time=time, message=message, stream=stream, file="/var/log/x.log", node="node-1", kubernetes=kubernetes
    )


# -- registry and options ------------------------------------------------------------------------------


def test_registry_lists_every_sink_type() -> None:
    assert sorted(SINK_TYPES) == ["file", "http", "loki", "stdout", "syslog"]
    for type_name, cls in SINK_TYPES.items():
        assert cls.type == type_name


def test_make_sink_builds_and_ignores_name_and_caller_keys(tmp_path: Path) -> None:
    sink = make_sink(
        {"type": "file", "name": "out", "path": str(tmp_path / "o.jsonl"), "batch": 5},
        name="out",
        ignore=("batch",),
    )
    assert isinstance(sink, FileSink) and sink.name == "out" and sink.path == tmp_path / "o.jsonl"
    # '-' and '_' are interchangeable in option names, as everywhere in the config.
    loki = make_sink({"type": "loki", "url": "http://127.0.0.1:3100", "tenant-id": "t"}, name="l")
    assert loki.tenant_id == "t"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "kafka"},
            "type: unknown sink type 'kafka' (expected one of file, http, loki, stdout, syslog)",
        ),
        ({}, "type: unknown sink type None"),
        ({"type": "file"}, "path: required for a file sink"),
        ({"type": "file", "path": ""}, "path: must not be empty"),
        ({"type": "file", "path": "/x", "pth": 1}, "pth: unknown option for a file sink (known: path)"),
        ({"type": "stdout", "path": "/x"}, "path: unknown option for a stdout sink"),
        ({"type": "loki"}, "url: required"),
        ({"type": "loki", "url": "127.0.0.1:3100"}, "url: expected an http:// or https:// URL"),
        (
            {"type": "loki", "url": "http://h", "labels": ["pod", "podd"]},
            "labels: unknown record field 'podd'",
        ),
        ({"type": "loki", "url": "http://h", "labels": "pod"}, "labels: expected a list"),
        (
            {"type": "loki", "url": "http://h", "line_format": "xml"},
            "line_format: expected one of json, message",
        ),
        ({"type": "loki", "url": "http://h", "gzip": "maybe"}, "gzip: expected true or false"),
        ({"type": "loki", "url": "http://h", "timeout": "soon"}, "timeout: expected a duration"),
        ({"type": "loki", "url": "http://h", "headers": {"X-A": "1\r\nX-B: 2"}}, "headers: header 'X-A'"),
        ({"type": "loki", "url": "http://h", "password": "p"}, "username: required when a password is set"),
        ({"type": "http", "url": "http://h", "method": "GET"}, "method: expected one of POST, PUT, PATCH"),
        ({"type": "syslog"}, "address: required"),
        ({"type": "syslog", "address": "h:99999"}, "address: port out of range"),
        ({"type": "syslog", "address": "h:x"}, "address: bad port"),
        ({"type": "syslog", "address": "h:514", "facility": "local9"}, "facility: unknown facility 'local9'"),
        ({"type": "syslog", "address": "h:514", "facility": 24}, "facility: facility number must be 0-23"),
    ],
)
def test_bad_options_are_refused_with_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        make_sink(spec, name="s")
    assert str(caught.value).startswith(message)


# -- stdout -------------------------------------------------------------------------------------------


async def test_stdout_writes_json_lines_and_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO()
    fake = io.TextIOWrapper(io.BufferedWriter(raw), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", fake)
    sink = StdoutSink("out", {})
    batch = [record("héllo"), record("second\nline", stream="stderr", kubernetes=KUBE)]
    await sink.send(batch)
    lines = raw.getvalue().decode().splitlines()  # visible without closing: flushed per batch
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in batch]
    assert lines[0] == batch[0].to_json()


# -- file ---------------------------------------------------------------------------------------------


def read_messages(path: Path) -> list[str]:
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]


async def test_file_sink_appends_json_lines_and_creates_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "out.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(record("already there").to_json() + "\n")
    sink = FileSink("f", {"path": str(path)})
    await sink.start()
    await sink.send([record("one"), record("two", kubernetes=KUBE)])
    await sink.send([record("three")])
    await sink.flush()
    await sink.close()
    assert read_messages(path) == ["already there", "one", "two", "three"]
    assert json.loads(path.read_text().splitlines()[2])["kubernetes"] == KUBE

    fresh = tmp_path / "new" / "sub" / "out.jsonl"
    sink = FileSink("f", {"path": str(fresh)})
    await sink.start()
    await sink.send([record("x")])
    await sink.close()
    assert read_messages(fresh) == ["x"]


async def test_file_sink_follows_rotation_by_rename_and_by_removal(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    sink = FileSink("f", {"path": str(path)})
    await sink.start()
    await sink.send([record("before rename")])
    path.rename(tmp_path / "out.jsonl.1")  # logrotate "create" mode
    await sink.send([record("after rename")])
    path.unlink()  # someone removed it
    await sink.send([record("after removal")])
    await sink.flush()
    await sink.close()
    assert read_messages(tmp_path / "out.jsonl.1") == ["before rename"]
    assert read_messages(path) == ["after removal"]


async def test_file_sink_fsyncs_on_flush_and_before_letting_a_rotated_file_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(file_sink_module.os, "fsync", counting_fsync)
    path = tmp_path / "out.jsonl"
    sink = FileSink("f", {"path": str(path)})
    await sink.start()
    await sink.flush()
    assert synced == []  # nothing written, nothing to sync
    await sink.send([record("a")])
    first_inode = path.stat().st_ino
    await sink.flush()
    assert synced == [first_inode]
    await sink.flush()
    assert synced == [first_inode]  # clean: no second fsync
    await sink.send([record("b")])
    path.rename(tmp_path / "old")
    await sink.send([record("c")])  # the renamed file is fsynced before it is closed
    assert synced == [first_inode, first_inode]
    await sink.close()
    assert synced[-1] == path.stat().st_ino  # close syncs what the new file got


async def test_file_sink_failed_write_leaves_no_partial_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.jsonl"
    sink = FileSink("f", {"path": str(path)})
    await sink.start()
    await sink.send([record("first")])
    real_write = os.write
    calls = {"n": 0}

    def half_then_enospc(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_sink_module.os, "write", half_then_enospc)
    with pytest.raises(RetryableSinkError, match="No space left"):
        await sink.send([record("second " * 50), record("third")])
    monkeypatch.setattr(file_sink_module.os, "write", real_write)
    assert read_messages(path) == ["first"]
    await sink.send([record("second"), record("third")])  # the retry
    await sink.close()
    assert read_messages(path) == ["first", "second", "third"]


async def test_file_sink_unusable_path_is_retryable_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    sink = FileSink("f", {"path": str(blocker / "out.jsonl")})
    await sink.start()  # logs a warning, does not raise
    with pytest.raises(RetryableSinkError):
        await sink.send([record("x")])
    await sink.close()


# -- syslog formatting --------------------------------------------------------------------------------


def test_syslog_message_format() -> None:
    message = format_message(record("hello wörld", stream="stderr", kubernetes=KUBE), 1, None)
    assert (
        message
        == (
            "<11>1 2026-01-02T03:04:05.123456Z node-1 nginx - - "
            '[k8s@32473 namespace="default" pod="web-0" container="nginx"] hello wörld'
        ).encode()
    )
    plain = format_message(record("", stream=None, time="bad"), 16, None)
    assert plain == b"<134>1 - node-1 nodeagent - - -"
    assert format_message(record("m", kubernetes=KUBE), 1, "my app").startswith(b"<14>1 2026")
    assert b" my_app - - " in format_message(record("m", kubernetes=KUBE), 1, "my app")


def test_syslog_structured_data_escaping_and_framing() -> None:
    assert escape_param_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    only_namespace = record("m", kubernetes={"namespace": "ns", "pod": ""})
    assert structured_data(only_namespace) == '[k8s@32473 namespace="ns"]'
    assert structured_data(record("m")) == "-"
    assert frame("é".encode()) == b"2 \xc3\xa9"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("logs.example:6514", ("logs.example", 6514)),
        ("127.0.0.1", ("127.0.0.1", 514)),
        ("[::1]:601", ("::1", 601)),
        ("[fe80::1]", ("fe80::1", 514)),
    ],
)
def test_syslog_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


# -- syslog delivery and reconnects (a local TCP server standing in for the collector) -----------------


class FramedServer:
    """Reads RFC 6587 octet-counted frames; can drop its connections."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.arrived = asyncio.Event()

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                length = await reader.readuntil(b" ")
                self.messages.append(await reader.readexactly(int(length)))
                self.arrived.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.messages) < count:
                self.arrived.clear()
                await self.arrived.wait()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


async def test_syslog_reconnects_after_the_server_drops_the_connection() -> None:
    server = FramedServer()
    await server.start()
    sink = SyslogSink("s", {"address": f"127.0.0.1:{server.port}", "timeout": "2s"})
    try:
        await sink.start()
        await sink.send([record("one\nwith newline"), record("two")])
        await server.wait_for(2)
        for writer in server.writers:  # the collector restarts its side
            writer.close()
        await asyncio.sleep(0.1)
        await sink.send([record("three")])
        await server.wait_for(3)
        assert server.connections == 2
        messages = [m.split(b" - - - ", 1)[1] for m in server.messages]
        assert messages == [b"one\nwith newline", b"two", b"three"]
    finally:
        await sink.close()
        await server.stop()


async def test_syslog_server_down_is_retryable_then_recovers() -> None:
    server = FramedServer()
    await server.start()
    port = server.port
    await server.stop()
    sink = SyslogSink("s", {"address": f"127.0.0.1:{port}", "timeout": "2s"})
    await sink.start()  # does not raise while the collector is down
    with pytest.raises(RetryableSinkError, match="cannot connect"):
        await sink.send([record("lost?")])
    server = FramedServer()
    await server.start(port)
    try:
        await sink.send([record("delivered")])
        await server.wait_for(1)
        assert server.messages[0].endswith(b" delivered")
    finally:
        await sink.close()
        await server.stop()
