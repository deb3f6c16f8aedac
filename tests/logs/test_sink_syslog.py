"""The syslog sink: RFC 5424 formatting and RFC 6587 framing, delivery against a local TCP server."""

from __future__ import annotations

import asyncio

import pytest

from nodeagent.logs.sinks.base import RetryableSinkError
from nodeagent.logs.sinks.syslog import (
    SyslogSink,
    escape_param_value,
    format_message,
    frame,
    parse_address,
    structured_data,
)
from tests.logs.conftest import KUBE
from tests.logs.conftest import sink_record as record

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
