"""Syslog over RELP (rsyslog's Reliable Event Logging Protocol, as librelp and imrelp speak it).

Options:
  address    ``host:port`` or ``[v6]:port`` (required, with the port: RELP has no standard one)
  facility, app_name   as the syslog sink (same RFC 5424 message, see :mod:`.syslog`)
  window     unacknowledged messages in flight at most (default 128, librelp's default window)
  timeout    connect, write and answer timeout (default 10s)
  tls        TLS towards the server (imrelp's ``tls="on"``): ca_file, cert_file, key_file, server_name,
             insecure_skip_verify, min_version; see :mod:`._tls`

Wire format: frames ``TXNR SP COMMAND SP DATALEN [SP DATA] LF``, TXNR counting from 1 on each connection
(after 999,999,999 back to 1). A connection starts with ``open`` offering ``relp_version=0``,
``relp_software=nodeagent,<version>`` and ``commands=syslog``; the server answers ``rsp`` with ``200 OK``
and its offers, which must include ``syslog``. Each message is a ``syslog`` command; the server answers
each with ``rsp`` ``200 OK`` (or ``500 <reason>``). ``close`` ends a session; the server may send
``serverclose`` (TXNR 0) when it shuts down.

``send`` returns once every message of the batch has its ``200 OK``. When the connection breaks
mid-batch (or a message gets a 500), the batch fails retryably, and the sink remembers which messages of
it were acknowledged: the pipeline's retry of the same batch sends only the others. So a server that dies
repeats nothing whose acknowledgement arrived; what was in flight (at most ``window`` messages, whose
answers a broken connection swallows) is sent again: at most one batch repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent import __version__
from nodeagent.config.schema import REQUIRED, Field, Section
from nodeagent.config.values import bounded, parse_int, parse_str, positive_duration
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._tcp import address_parser
from nodeagent.logs.sinks._tls import tls_field
from nodeagent.logs.sinks.base import RetryableSinkError
from nodeagent.logs.sinks.syslog import MESSAGE_FIELDS, SyslogSink, format_message
from nodeagent.safeio import quote

MAX_TXNR = 999_999_999
MAX_ANSWER_BYTES = 64 * 1024  # an rsp is "200 OK" or a short error; open's carries the offers
OFFERS = f"relp_version=0\nrelp_software=nodeagent,{__version__}\ncommands=syslog".encode()


class RelpProtocolError(Exception):
    """The server sent something RELP does not allow, or closed the session."""


def encode_frame(txnr: int, command: bytes, data: bytes = b"") -> bytes:
    if data:
        return b"%d %s %d %s\n" % (txnr, command, len(data), data)
    return b"%d %s 0\n" % (txnr, command)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """(txnr, command, data) of the next frame; raises RelpProtocolError, or IncompleteReadError at EOF."""
    try:
        return await _read_frame(reader)
    except asyncio.LimitOverrunError as exc:
        raise RelpProtocolError("frame line longer than the reader's limit") from exc


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    line = await reader.readuntil(b"\n")
    parts = line[:-1].split(b" ", 3)
    if (
        len(parts) < 3
        or not (parts[0].isdigit() and len(parts[0]) <= 9)
        or not parts[1].isalpha()
        or not (parts[2].isdigit() and len(parts[2]) <= 9)
    ):
        raise RelpProtocolError(f"malformed frame {quote(line[:100])}")
    length = int(parts[2])
    if length > MAX_ANSWER_BYTES:
        raise RelpProtocolError(f"answer of {length} bytes is larger than {MAX_ANSWER_BYTES}")
    data = parts[3] if len(parts) == 4 else b""
    while len(data) < length:  # the data held a LF: what came so far was not the trailer
        data += b"\n" + (await reader.readuntil(b"\n"))[:-1]
    if len(data) != length:
        raise RelpProtocolError(f"frame data of {len(data)} bytes, announced {length}")
    return int(parts[0]), parts[1], data


def parse_address(raw: Any) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``, the port required (RELP has no standard one)."""
    text = parse_str(raw).strip()
    if not re.search(r":\d+$", text):
        raise ValueError(f"expected host:port (RELP has no default port), got {raw!r}")
    return address_parser(1)(raw)


class RelpSink(SyslogSink):
    """The syslog sink's message and connection, with RELP's sessions and acknowledgements on top."""

    type: ClassVar[str] = "relp"
    option_schema: ClassVar[Section] = Section(
        (
            Field(
                "address",
                REQUIRED,
                "host:port or [v6]:port of the RELP listener.",
                parse_address,
            ),
            *MESSAGE_FIELDS,
            Field(
                "window", 128, "Messages sent before their acknowledgement at most.", bounded(parse_int, 1)
            ),
            Field("timeout", 10.0, "Connect, write and answer timeout.", positive_duration),
            tls_field(),
        ),
        subject="a relp sink",
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.window = self.read_options()["window"]
        self._txnr = 0
        # The batch a failed send left, and which of its messages the server acknowledged.
        self._unfinished: Sequence[Record] | None = None
        self._acknowledged: set[int] = set()

    @property
    def where(self) -> str:
        return self._connection.peer

    @property
    def _reader(self) -> asyncio.StreamReader | None:
        return self._connection.reader

    @property
    def _writer(self) -> asyncio.StreamWriter | None:
        return self._connection.writer

    def _connected(self) -> bool:
        return self._connection.is_open()

    async def _disconnect(self) -> None:
        await self._connection.close()

    async def start(self) -> None:
        # Not fatal when the server is down: send connects (and fails retryably) until it is up.
        with contextlib.suppress(RetryableSinkError):
            await self._connect()

    def _next_txnr(self) -> int:
        self._txnr = self._txnr % MAX_TXNR + 1
        return self._txnr

    async def _connect(self) -> None:
        """A connection and a RELP session on it (``open`` answered with ``200 OK`` and ``syslog``)."""
        await self._connection.connect()
        assert self._reader is not None and self._writer is not None
        self._txnr = 0
        try:
            txnr = self._next_txnr()
            self._writer.write(encode_frame(txnr, b"open", OFFERS))
            answer_txnr, command, data = await asyncio.wait_for(read_frame(self._reader), self.timeout)
            if (answer_txnr, command) != (txnr, b"rsp"):
                raise RelpProtocolError(f"expected rsp {txnr} to open, got {quote(command)} {answer_txnr}")
            status, _, offers = data.partition(b"\n")
            if not status.startswith(b"200"):
                raise RelpProtocolError(f"open refused: {quote(status[:200])}")
            commands = {
                value
                for line in offers.split(b"\n")
                if line.startswith(b"commands=")
                for value in line[len(b"commands=") :].split(b",")
            }
            if b"syslog" not in commands:
                raise RelpProtocolError(f"server does not offer the syslog command: {quote(offers[:200])}")
        except (OSError, TimeoutError, EOFError, RelpProtocolError) as exc:
            await self._disconnect()
            raise self._failure("opening a session", exc) from exc

    def _failure(self, doing: str, exc: BaseException) -> RetryableSinkError:
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, asyncio.IncompleteReadError):
            reason = "connection closed by the server"
        return RetryableSinkError(f"{self.name}: {doing} with {self.where} failed: {reason}")

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        if batch is not self._unfinished:  # a new batch (the pipeline retries with the same object)
            self._unfinished, self._acknowledged = batch, set()
        todo = [index for index in range(len(batch)) if index not in self._acknowledged]
        messages = [format_message(batch[index], self.facility, self.app_name) for index in todo]
        if not self._connected():
            await self._connect()
        in_flight: dict[int, int] = {}  # txnr -> batch index
        try:
            refused = await self._exchange(todo, messages, in_flight)
        except (OSError, TimeoutError, EOFError, RelpProtocolError) as exc:
            await self._disconnect()
            acknowledged = len(todo) - len(self._pending_of(todo))
            raise self._failure(f"sending ({acknowledged} of {len(todo)} acknowledged)", exc) from exc
        if refused:
            raise RetryableSinkError(
                f"{self.name}: {self.where} refused {refused[1]} of {len(todo)} messages: {refused[0]}"
            )
        self._unfinished, self._acknowledged = None, set()

    def _pending_of(self, todo: list[int]) -> list[int]:
        return [index for index in todo if index not in self._acknowledged]

    async def _exchange(
        self, todo: list[int], messages: list[bytes], in_flight: dict[int, int]
    ) -> tuple[str, int] | None:
        """Send with at most ``window`` unacknowledged; (first refusal, count) when some got a 500.

        Frames go out in runs of at least half a window (one write each), and answers are read as they
        come: a window that stops sliding for ``timeout`` is a failure.
        """
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        loop = asyncio.get_running_loop()
        run = max(1, self.window // 2)
        # imrelp's answers are small writes: with our delayed ACKs they wait ~40 ms on its Nagle timer
        # whenever no frame of ours goes out to carry the ACK. Quick ACKs before each read keep the
        # window sliding (measured: 2,600 -> 6,000-9,000 messages/s). Linux only; re-armed each time as
        # the kernel clears it.
        sock = writer.get_extra_info("socket")
        quickack = getattr(socket, "TCP_QUICKACK", None) if sock is not None else None
        refusal: str | None = None
        refused = 0
        position = 0
        async with asyncio.timeout(None) as deadline:
            while position < len(todo) or in_flight:
                deadline.reschedule(loop.time() + self.timeout)
                room = self.window - len(in_flight)
                if position < len(todo) and (room >= run or position + room >= len(todo)):
                    end = min(len(todo), position + room)
                    frames = []
                    for offset in range(position, end):
                        txnr = self._next_txnr()
                        in_flight[txnr] = todo[offset]
                        frames.append(encode_frame(txnr, b"syslog", messages[offset]))
                    position = end
                    writer.write(b"".join(frames))
                    await writer.drain()
                if quickack is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
                txnr, command, data = await read_frame(reader)
                if command == b"serverclose":
                    raise RelpProtocolError("the server closed the session (serverclose)")
                index = in_flight.pop(txnr, None)
                if command != b"rsp" or index is None:
                    raise RelpProtocolError(f"unexpected {quote(command)} for transaction {txnr}")
                if data.startswith(b"200"):
                    self._acknowledged.add(index)
                else:
                    refused += 1
                    refusal = refusal or quote(data[:200])
        return (refusal, refused) if refusal is not None else None

    async def close(self) -> None:
        if self._connected():
            assert self._reader is not None and self._writer is not None
            # A polite close; the server's answer is waited for briefly.
            with contextlib.suppress(OSError, TimeoutError, EOFError, RelpProtocolError):
                self._writer.write(encode_frame(self._next_txnr(), b"close"))
                await asyncio.wait_for(self._writer.drain(), 1.0)
                await asyncio.wait_for(read_frame(self._reader), 1.0)
        await self._disconnect()
