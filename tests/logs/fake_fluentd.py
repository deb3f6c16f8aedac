"""A strict Fluentd forward-protocol server (what Fluentd's in_forward and Fluent Bit's forward input accept),
for the forward sink's tests, on 127.0.0.1 only.

It reads every carrier mode (Message, Forward, PackedForward with bin or str entries,
CompressedPackedForward), checks each entry (``[time, record]``, time an EventTime ext 0 of 8 bytes with
nanoseconds below 10^9 or an integer, record a map; ``size`` when given equals the entry count) and answers
``{"ack": <chunk>}``. Like in_forward it closes the connection on malformed msgpack and on a failed
handshake (after a PONG saying why). With ``shared_key`` it runs the handshake: HELO (nonce, auth salt when
``users`` are set, keepalive), checks PING's digest and password digest, and answers PONG with its own
digest (``pong_digest="wrong"`` sends a wrong one and ``"echo"`` replays the client's own hostname and
digest, as a server without the key could: the client must refuse both).

Faults, by the number of the data message they hit (``plan={n: fault}``, counted from 0 over the
server's life, or ``default_fault`` for all): ``no_ack`` (keep the events, never answer), ``delay_ack``
(keep, answer after ``ack_delay``), ``reset_mid_chunk`` (reset the connection once part of the message has
arrived; nothing kept), ``refuse`` (read the message, keep nothing, close before any ack), ``wrong_ack``
(keep, answer with another chunk id), ``close_after_ack`` (keep, ack, close).
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import hmac
import os
import socket
import ssl
import struct
from dataclasses import dataclass, field
from typing import Any

import msgpack


@dataclass(frozen=True)
class EventTime:
    seconds: int
    nanoseconds: int


@dataclass
class Event:
    tag: str
    time: EventTime | int
    record: dict[str, Any]
    mode: str


class Rejected(Exception):
    """What in_forward answers by closing the connection."""


def _ext_hook(code: int, data: bytes) -> EventTime:
    if code != 0:
        raise Rejected(f"unknown ext type {code}")
    if len(data) != 8:
        raise Rejected(f"EventTime of {len(data)} bytes")
    seconds, nanoseconds = struct.unpack(">II", data)
    if nanoseconds >= 1_000_000_000:
        raise Rejected(f"EventTime nanoseconds {nanoseconds}")
    return EventTime(seconds, nanoseconds)


def unpacker(**limits: Any) -> msgpack.Unpacker:
    # surrogateescape: a str holding raw bytes (out_forward's PackedForward) survives, to be re-encoded.
    return msgpack.Unpacker(
        raw=False, unicode_errors="surrogateescape", ext_hook=_ext_hook, strict_map_key=True, **limits
    )


def sha512_hex(*parts: bytes) -> str:
    digest = hashlib.sha512()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _text(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise Rejected(f"expected a string, got {type(value).__name__}")


@dataclass
class FakeFluentd:
    shared_key: str | None = None
    self_hostname: str = "fluentd.test"
    users: dict[str, str] = field(default_factory=dict)
    keepalive: bool = True
    pong_digest: str = "right"  # "wrong": a bad digest; "echo": the client's hostname and digest sent back
    ssl_context: ssl.SSLContext | None = None
    plan: dict[int, str] = field(default_factory=dict)
    default_fault: str | None = None
    ack_delay: float = 0.2
    max_message_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        self.events: list[Event] = []
        self.rejections: list[str] = []
        self.connections = 0
        self.messages_seen = 0  # data messages received or reset (the faults' numbering)
        self.acked: list[str] = []
        self.chunks: list[str] = []
        self.pings: list[list[Any]] = []
        self.port = 0
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self, port: int = 0) -> FakeFluentd:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeFluentd:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def fault_for(self, number: int) -> str | None:
        return self.plan.get(number, self.default_fault)

    async def wait_for_events(self, count: int, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while len(self.events) < count:
                self.arrived.clear()
                await self.arrived.wait()

    # -- one connection ----------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except Rejected as exc:
            self.rejections.append(str(exc))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = unpacker(max_buffer_size=self.max_message_bytes)
        nonce = auth_salt = b""
        if self.shared_key is not None:
            nonce, auth_salt = os.urandom(16), os.urandom(16) if self.users else b""
            helo = ["HELO", {"nonce": nonce, "auth": auth_salt, "keepalive": self.keepalive}]
            writer.write(msgpack.packb(helo))
            await writer.drain()
            ping = await self._next(reader, stream, writer, counts=False)
            await self._check_ping(ping, nonce, auth_salt, writer)
        while True:
            message = await self._next(reader, stream, writer, counts=True)
            if message is None:  # a heartbeat
                continue
            number = self.messages_seen
            self.messages_seen += 1
            fault = self.fault_for(number)
            if fault == "refuse":
                self.rejections.append(f"message {number} refused")
                return
            chunk = self._accept(message)
            if chunk is None or fault == "no_ack":
                if not self.keepalive:
                    return
                continue
            if fault == "delay_ack":
                await asyncio.sleep(self.ack_delay)
            ack = base64.b64encode(os.urandom(16)).decode() if fault == "wrong_ack" else chunk
            writer.write(msgpack.packb({"ack": ack}))
            await writer.drain()
            self.acked.append(chunk)
            if fault == "close_after_ack" or not self.keepalive:
                return

    async def _next(
        self,
        reader: asyncio.StreamReader,
        stream: msgpack.Unpacker,
        writer: asyncio.StreamWriter,
        *,
        counts: bool,
    ) -> Any:
        """The next msgpack object; ``reset_mid_chunk`` aborts once part of a counted message is in."""
        begun = False
        while True:
            try:
                return next(stream)
            except StopIteration:
                pass
            except Rejected:
                raise
            except Exception as exc:  # everything the unpacker raises on bad bytes
                raise Rejected(f"malformed msgpack: {type(exc).__name__}: {exc}") from None
            data = await reader.read(65536)
            if not data:
                raise ConnectionResetError("client closed")
            if counts and not begun:
                begun = True
                if self.fault_for(self.messages_seen) == "reset_mid_chunk":
                    self.messages_seen += 1  # this message met its fault: its retry goes through
                    self._abort(writer)
                    raise ConnectionResetError("reset mid-chunk (injected)")
            try:
                stream.feed(data)
            except msgpack.BufferFull:
                raise Rejected("message larger than the buffer") from None

    @staticmethod
    def _abort(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # RST rather than FIN, like a crashed server
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _check_ping(
        self, ping: Any, nonce: bytes, auth_salt: bytes, writer: asyncio.StreamWriter
    ) -> None:
        assert self.shared_key is not None
        self.pings.append(ping)
        reason = None
        if self.pong_digest == "echo":  # a server without the key, replaying the client's own proof
            writer.write(msgpack.packb(["PONG", True, "", ping[1], ping[3]]))
            await writer.drain()
            return
        if not (isinstance(ping, list) and len(ping) == 6 and ping[0] == "PING"):
            reason = "invalid ping message"
        else:
            _, hostname, salt, digest, username, password_digest = ping
            hostname, salt = _text(hostname), _text(salt)
            expected = sha512_hex(salt, hostname, nonce, self.shared_key.encode())
            if hostname == self.self_hostname.encode():
                reason = "same hostname between input and output: invalid configuration"
            elif not isinstance(digest, str) or not hmac.compare_digest(digest.encode(), expected.encode()):
                reason = "shared_key mismatch"
            elif auth_salt:
                password = self.users.get(username) if isinstance(username, str) else None
                wanted = (
                    sha512_hex(auth_salt, _text(username), password.encode()) if password is not None else ""
                )
                if not password or not isinstance(password_digest, str) or password_digest != wanted:
                    reason = "username/password mismatch"
        if reason is not None:
            writer.write(msgpack.packb(["PONG", False, reason, "", ""]))
            await writer.drain()
            raise Rejected(reason)
        server_digest = sha512_hex(salt, self.self_hostname.encode(), nonce, self.shared_key.encode())
        if self.pong_digest == "wrong":
            server_digest = sha512_hex(b"not", server_digest.encode())
        writer.write(msgpack.packb(["PONG", True, "", self.self_hostname, server_digest]))
        await writer.drain()

    # -- events ------------------------------------------------------------------------------------------

    def _accept(self, message: Any) -> str | None:
        """Keep the message's events; its chunk id when it asked for an ack. Raises Rejected."""
        if not isinstance(message, list) or len(message) < 2:
            raise Rejected(f"not a forward message: {type(message).__name__}")
        tag, second = message[0], message[1]
        if not isinstance(tag, str) or not tag:
            raise Rejected("tag is not a string")
        if isinstance(second, (bytes, str)):
            option = self._option(message, 2)
            raw = second.encode("utf-8", "surrogateescape") if isinstance(second, str) else second
            mode = "PackedForward"
            if option.get("compressed") == "gzip":
                if not isinstance(second, bytes):
                    raise Rejected("CompressedPackedForward entries must be bin")
                try:
                    raw = gzip.decompress(raw)
                except (OSError, EOFError) as exc:
                    raise Rejected(f"bad gzip: {exc}") from None
                mode = "CompressedPackedForward"
            entries = list(self._entries_stream(raw))
        elif isinstance(second, list):
            option = self._option(message, 2)
            entries, mode = second, "Forward"
        else:
            option = self._option(message, 3)
            entries, mode = [message[1:3]], "Message"
        if "size" in option and option["size"] != len(entries):
            raise Rejected(f"size option {option['size']} but {len(entries)} entries")
        events = [self._event(tag, entry, mode) for entry in entries]
        self.events.extend(events)
        self.arrived.set()
        chunk = option.get("chunk")
        if chunk is not None:
            if not isinstance(chunk, str) or len(base64.b64decode(chunk, validate=True)) != 16:
                raise Rejected(f"chunk is not base64 of 128 bits: {chunk!r}")
            self.chunks.append(chunk)
        return chunk

    @staticmethod
    def _option(message: list[Any], index: int) -> dict[str, Any]:
        if len(message) > index + 1:
            raise Rejected(f"{len(message)} elements in a forward message")
        option = message[index] if len(message) > index else {}
        if option is None:
            return {}
        if not isinstance(option, dict):
            raise Rejected("option is not a map")
        return option

    @staticmethod
    def _entries_stream(raw: bytes) -> Any:
        stream = unpacker()
        stream.feed(raw)
        end = 0  # where the last whole entry ended: the stream must end there, not in a truncated entry
        while True:
            try:
                entry = stream.unpack()
            except msgpack.OutOfData:
                break
            except Rejected:
                raise
            except Exception as exc:
                raise Rejected(f"malformed entries: {type(exc).__name__}") from None
            end = stream.tell()
            yield entry
        if end != len(raw):
            raise Rejected("truncated entries stream")

    @staticmethod
    def _event(tag: str, entry: Any, mode: str) -> Event:
        if not (isinstance(entry, list) and len(entry) == 2):
            raise Rejected("an entry is not [time, record]")
        time, record = entry
        if not (isinstance(time, EventTime) or (isinstance(time, int) and not isinstance(time, bool))):
            raise Rejected(f"entry time is {type(time).__name__}")
        if not isinstance(record, dict):
            raise Rejected("entry record is not a map")
        return Event(tag, time, record, mode)
