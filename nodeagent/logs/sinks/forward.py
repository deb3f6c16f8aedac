"""Fluentd forward protocol v1: msgpack over TCP to Fluentd's ``in_forward`` or Fluent Bit's forward input.

Options:
  address               ``host:port`` or ``[v6]:port`` (required; the port defaults to 24224)
  tag                   the event tag: text with ``{key}`` / ``{key.sub}`` placeholders taken from the record
                        (``kube.{kubernetes.namespace}.{kubernetes.pod}``); ``{file}`` is the file path with
                        ``/`` as ``.``, so ``kube.{file}`` is Fluent Bit's tail ``Tag kube.*``. A missing
                        value is ``_``; other characters than letters, digits, ``_-.`` become ``_``.
                        Default ``nodeagent``.
  require_ack_response  ask the server to acknowledge each message (``chunk`` option) and return from send
                        only after every ack (default true: at-least-once; false: best effort)
  ack_timeout           how long to wait for an ack before the batch counts as failed (default 30s)
  timeout               connect, handshake and write timeout (default 10s)
  gzip                  CompressedPackedForward (``compressed: gzip``), not PackedForward (default false)
  keepalive             keep the connection between batches (default true; the server's HELO can say no)
  max_message_bytes     split a batch into messages of at most about this many bytes of entries (4MiB:
                        below Fluent Bit's default ``Buffer_Max_Size`` of 6 MB)
  shared_key / shared_key_file   the server's ``<security> shared_key``: turns on the handshake (HELO, PING,
                        PONG), in which the server's digest is checked too; the file is re-read on change
  username, password / password_file   for a server with ``user_auth``
  self_hostname         the client hostname sent in PING (default: this host's name)
  tls                   TLS towards the server (see :mod:`._tls`)

Each batch becomes one PackedForward message per tag (``[tag, bin(entries), {size, chunk}]``), each entry
``[EventTime, record]``: EventTime is msgpack ext type 0 (seconds and nanoseconds, big-endian 32-bit), the
record is :meth:`Record.to_dict`. Messages go one at a time, each waiting for its ack. A failure closes the
connection and is retryable: the pipeline sends the whole batch again, so a batch whose messages were
acknowledged in part is repeated (at most one batch). Credentials never appear in a message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import hmac
import os
import re
import socket
import struct
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent.config.schema import REQUIRED, Field, Invalid, Section
from nodeagent.config.values import (
    parse_bool,
    parse_nonempty_str,
    parse_str,
    positive_duration,
    positive_size,
)
from nodeagent.logs import metrics
from nodeagent.logs.encoding import unix_nanos
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._http import SecretFile, check_password
from nodeagent.logs.sinks._tcp import TCPConnection, address_parser
from nodeagent.logs.sinks._tls import ClientTLS, tls_field
from nodeagent.logs.sinks.base import RetryableSinkError, Sink
from nodeagent.safeio import quote

DEFAULT_PORT = 24224
DEFAULT_TAG = "nodeagent"
EVENT_TIME_EXT = 0
MISSING_TAG_PART = "_"
MAX_TAG_CHARS = 512
MAX_RESPONSE_BYTES = 64 * 1024  # an ack, HELO or PONG is far smaller: more is a broken server
_READ_BYTES = 64 * 1024
_GZIP_IN_THREAD_BYTES = 256 * 1024
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_SECONDS_NANOS = struct.Struct(">II")


class ForwardProtocolError(Exception):
    """The server answered something the protocol does not allow here (the connection is dropped)."""


# ---------------------------------------------------------------------------------------------------
# Tags


def _tag_value(value: Any, path: tuple[str, ...]) -> str:
    if value is None or value == "" or isinstance(value, (dict, list)):
        return MISSING_TAG_PART
    text = str(value)
    if path == ("file",):
        text = text.replace("/", ".").strip(".")
    return _TAG_UNSAFE.sub("_", text) or MISSING_TAG_PART


class TagTemplate:
    """``kube.{kubernetes.namespace}``: literal text and dotted paths into :meth:`Record.to_dict`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[str | tuple[str, ...]] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            self._literal(text[position : match.start()])
            path = tuple(match[1].strip().split("."))
            if not all(path):
                raise ValueError(f"empty name in placeholder {{{match[1]}}}")
            self.parts.append(path)
            position = match.end()
        self._literal(text[position:])
        self.constant = "".join(p for p in self.parts if isinstance(p, str)) if self.is_constant else None
        if self.constant is not None and not self.constant:
            raise ValueError("the tag must not be empty")

    def _literal(self, text: str) -> None:
        if "{" in text or "}" in text:
            raise ValueError(f"unbalanced brace in tag template {self.text!r}")
        if text:
            self.parts.append(text)

    @property
    def is_constant(self) -> bool:
        return all(isinstance(part, str) for part in self.parts)

    def render(self, data: dict[str, Any]) -> str:
        if self.constant is not None:
            return self.constant
        pieces = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value: Any = data
            for key in part:
                value = value.get(key) if isinstance(value, dict) else None
            pieces.append(_tag_value(value, part))
        return "".join(pieces)[:MAX_TAG_CHARS]


def parse_tag(raw: Any) -> TagTemplate:
    return TagTemplate(parse_nonempty_str(raw))


# ---------------------------------------------------------------------------------------------------
# Encoding


def _msgpack() -> Any:
    import msgpack  # lazily: only agents with a forward sink load it

    return msgpack


def event_time(record_time: str | None) -> Any:
    """EventTime (ext type 0) of a record time; the current time when the record's is not RFC 3339."""
    nanos = unix_nanos(record_time)
    if nanos is None or nanos < 0 or nanos >= (1 << 32) * 1_000_000_000:
        nanos = time.time_ns()
    seconds, fraction = divmod(nanos, 1_000_000_000)
    return _msgpack().ExtType(EVENT_TIME_EXT, _SECONDS_NANOS.pack(seconds, fraction))


def _plain(value: Any) -> Any:
    """A value msgpack can pack: integers beyond 64 bits and unknown types as text."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, float, bytes)):
        return value
    if isinstance(value, int) and -(1 << 63) <= value < 1 << 64:
        return value
    return str(value)


class _Message:
    """One forward message being built: its tag, the packed entries, how many and their size."""

    __slots__ = ("count", "entries", "size", "tag")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.entries: list[bytes] = []
        self.count = 0
        self.size = 0


def pack_messages(
    batch: Sequence[Record], tag: TagTemplate, max_message_bytes: int
) -> list[tuple[str, bytes, int]]:
    """``(tag, entries stream, entry count)`` per message: records grouped by tag in order of their first
    appearance (a tag's records keep their order), split when a message reaches ``max_message_bytes``."""
    packer = _msgpack().Packer(unicode_errors="replace")
    building: dict[str, _Message] = {}
    done: list[_Message] = []
    for record in batch:
        data = record.to_dict()
        entry_tag = tag.render(data)
        try:
            entry = packer.pack([event_time(record.time), data])
        except (OverflowError, TypeError, ValueError):
            entry = packer.pack([event_time(record.time), _plain(data)])
        message = building.get(entry_tag)
        if message is None or (message.count and message.size + len(entry) > max_message_bytes):
            if message is not None:
                done.append(message)
            message = building[entry_tag] = _Message(entry_tag)
        message.entries.append(entry)
        message.count += 1
        message.size += len(entry)
    done.extend(building.values())
    # Messages of one tag stay in order; across tags the order does not matter to the server.
    return [(m.tag, b"".join(m.entries), m.count) for m in done]


def chunk_id() -> str:
    """A fresh ``chunk`` option: base64 of 128 random bits."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def sha512_hex(*parts: bytes) -> str:
    digest = hashlib.sha512()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _as_bytes(value: Any) -> bytes:
    """A HELO/PONG string field (msgpack str or bin, read raw) as bytes."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise ForwardProtocolError(f"expected a string, got {type(value).__name__}")


# ---------------------------------------------------------------------------------------------------
# The sink


def _check_options(values: dict[str, Any]) -> None:
    check_password(values)
    if values["shared_key"] is not None and values["shared_key_file"] is not None:
        raise Invalid("shared_key_file", "set either shared_key or shared_key_file, not both")
    has_key = values["shared_key"] is not None or values["shared_key_file"] is not None
    if values["username"] is not None and not has_key:
        raise Invalid("username", "user authentication happens in the shared-key handshake: set shared_key")


class ForwardSink(Sink):
    type: ClassVar[str] = "forward"
    option_schema: ClassVar[Section] = Section(
        (
            Field(
                "address",
                REQUIRED,
                f"host:port or [v6]:port (port {DEFAULT_PORT} by default).",
                address_parser(DEFAULT_PORT),
            ),
            Field("tag", TagTemplate(DEFAULT_TAG), "Tag, with {record.key} placeholders.", parse_tag),
            Field("require_ack_response", True, "Wait for the server's ack of each message.", parse_bool),
            Field("ack_timeout", 30.0, "How long to wait for an ack.", positive_duration),
            Field("timeout", 10.0, "Connect, handshake and write timeout.", positive_duration),
            Field("gzip", False, "CompressedPackedForward (compressed: gzip).", parse_bool),
            Field("keepalive", True, "Keep the connection between batches.", parse_bool),
            Field("max_message_bytes", 4 * 1024 * 1024, "Split messages above this size.", positive_size),
            Field(
                "shared_key", None, "The server's shared_key (prefer shared_key_file or ${ENV}).", parse_str
            ),
            Field(
                "shared_key_file",
                None,
                "File holding the shared key, re-read when it changes.",
                parse_nonempty_str,
            ),
            Field("username", None, "User for a server with user_auth.", parse_str),
            Field("password", None, "Its password (prefer password_file or ${ENV}).", parse_str),
            Field(
                "password_file",
                None,
                "File holding the password, re-read when it changes.",
                parse_nonempty_str,
            ),
            Field(
                "self_hostname",
                None,
                "Client hostname in PING (default: this host's name).",
                parse_nonempty_str,
            ),
            tls_field(),
        ),
        check=_check_options,
        subject="a forward sink",
    )

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        values = self.read_options()
        self.host, self.port = values["address"]
        self.tag: TagTemplate = values["tag"]
        self.require_ack = values["require_ack_response"]
        self.ack_timeout = values["ack_timeout"]
        self.timeout = values["timeout"]
        self.gzip = values["gzip"]
        self.keepalive = values["keepalive"]
        self.max_message_bytes = values["max_message_bytes"]
        self.self_hostname = values["self_hostname"] or socket.gethostname()
        self.username = values["username"]
        self._shared_key: str | None = values["shared_key"]
        self._shared_key_file = (
            SecretFile("shared_key_file", values["shared_key_file"]) if values["shared_key_file"] else None
        )
        self._password: str | None = values["password"]
        self._password_file = (
            SecretFile("password_file", values["password_file"]) if values["password_file"] else None
        )
        self.handshake = self._shared_key is not None or self._shared_key_file is not None
        self._connection = TCPConnection(
            name, self.host, self.port, self.timeout, ClientTLS(name, values["tls"])
        )
        self._unpacker: Any = None
        self._server_keepalive = True

    # -- connection and handshake --------------------------------------------------------------------

    async def _secret(self, inline: str | None, file: SecretFile | None) -> str:
        return await file.current(self.name) if file is not None else inline or ""

    async def _open(self) -> None:
        """Connected and (with a shared key) authenticated both ways; raises RetryableSinkError."""
        if self._connection.is_open():
            return
        await self._connection.connect()
        self._unpacker = _msgpack().Unpacker(raw=True, max_buffer_size=MAX_RESPONSE_BYTES)
        self._server_keepalive = True
        if not self.handshake:
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self._handshake()
        except ForwardProtocolError as exc:
            await self._connection.close()
            metrics.SINK_HANDSHAKE_FAILURES.labels(self.name).inc()
            raise RetryableSinkError(
                f"{self.name}: handshake with {self._connection.peer} failed: {exc}"
            ) from None
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            await self._connection.close()
            metrics.SINK_HANDSHAKE_FAILURES.labels(self.name).inc()
            raise RetryableSinkError(
                f"{self.name}: handshake with {self._connection.peer} failed: {type(exc).__name__}: {exc}"
            ) from None

    async def _handshake(self) -> None:
        """HELO from the server, our PING, its PONG: both sides prove they know the shared key."""
        shared_key = (await self._secret(self._shared_key, self._shared_key_file)).encode()
        helo = await self._read_response()
        if not (
            isinstance(helo, list) and len(helo) == 2 and helo[0] == b"HELO" and isinstance(helo[1], dict)
        ):
            raise ForwardProtocolError(f"expected HELO, got {quote(repr(helo))}")
        options = helo[1]
        nonce = _as_bytes(options.get(b"nonce", b""))
        auth_salt = _as_bytes(options.get(b"auth", b""))
        self._server_keepalive = options.get(b"keepalive", True) is not False
        salt = os.urandom(16).hex().encode()
        hostname = self.self_hostname.encode()
        ping: list[Any] = ["PING", self.self_hostname, salt, sha512_hex(salt, hostname, nonce, shared_key)]
        if auth_salt:
            if self.username is None:
                raise ForwardProtocolError("the server requires a username and password")
            password = (await self._secret(self._password, self._password_file)).encode()
            ping += [self.username, sha512_hex(auth_salt, self.username.encode(), password)]
        else:
            ping += ["", ""]
        await self._connection.write(_msgpack().packb(ping))
        pong = await self._read_response()
        if not (isinstance(pong, list) and len(pong) == 5 and pong[0] == b"PONG"):
            raise ForwardProtocolError(f"expected PONG, got {quote(repr(pong))}")
        _, accepted, reason, server_hostname, server_digest = pong
        if accepted is not True:
            raise ForwardProtocolError(
                f"the server refused us: {quote(_as_bytes(reason).decode('utf-8', 'replace'))}"
            )
        server_hostname = _as_bytes(server_hostname)
        # With the same name the server's digest would be ours: a server without the key could echo it.
        if server_hostname == hostname:
            raise ForwardProtocolError("the server has our self_hostname: set a different self_hostname")
        expected = sha512_hex(salt, server_hostname, nonce, shared_key)
        if not hmac.compare_digest(_as_bytes(server_digest), expected.encode()):
            raise ForwardProtocolError(
                "the server's shared key digest is wrong (it does not know the shared key)"
            )

    async def _read_response(self) -> Any:
        """The server's next msgpack object (no timeout here: the callers set one)."""
        msgpack = _msgpack()
        reader = self._connection.reader
        assert reader is not None and self._unpacker is not None
        while True:
            try:
                return next(self._unpacker)
            except StopIteration:
                pass
            except (ValueError, msgpack.UnpackException) as exc:
                raise ForwardProtocolError(
                    f"malformed msgpack from the server: {type(exc).__name__}"
                ) from None
            data = await reader.read(_READ_BYTES)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            try:
                self._unpacker.feed(data)
            except msgpack.BufferFull:
                raise ForwardProtocolError(f"more than {MAX_RESPONSE_BYTES} bytes of response") from None

    # -- delivery --------------------------------------------------------------------------------------

    async def start(self) -> None:
        # Not fatal when the server is down: send connects (and fails retryably) until it is up.
        with contextlib.suppress(RetryableSinkError):
            await self._open()

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        for tag, entries, count in pack_messages(batch, self.tag, self.max_message_bytes):
            await self._send_message(tag, entries, count)
        if not self.keepalive:
            await self._connection.close()

    async def _send_message(self, tag: str, entries: bytes, count: int) -> None:
        option: dict[str, Any] = {"size": count}
        if self.gzip:
            if len(entries) > _GZIP_IN_THREAD_BYTES:
                entries = await self.blocking(gzip.compress, entries, 6)
            else:
                entries = gzip.compress(entries, 6)
            option["compressed"] = "gzip"
        chunk = chunk_id() if self.require_ack else None
        if chunk is not None:
            option["chunk"] = chunk
        data = _msgpack().packb([tag, entries, option])
        await self._open()
        await self._connection.write(data)
        if chunk is not None:
            await self._wait_for_ack(chunk)
        if not self._server_keepalive:  # the server closes after each message (deny_keepalive)
            await self._connection.close()

    async def _wait_for_ack(self, chunk: str) -> None:
        try:
            async with asyncio.timeout(self.ack_timeout):
                response = await self._read_response()
            if not isinstance(response, dict):
                raise ForwardProtocolError(self._unexpected(response))
            if response.get(b"ack") != chunk.encode():
                raise ForwardProtocolError(f"ack for another chunk: {quote(repr(response))}")
        except TimeoutError:
            reason = f"no ack within {self.ack_timeout:g}s"
        except (OSError, asyncio.IncompleteReadError) as exc:
            reason = f"connection lost before the ack: {type(exc).__name__}: {exc}"
        except ForwardProtocolError as exc:
            reason = str(exc)
        else:
            return
        await self._connection.close()
        metrics.SINK_ACKS_MISSED.labels(self.name).inc()
        raise RetryableSinkError(f"{self.name}: {self._connection.peer}: {reason}")

    def _unexpected(self, response: Any) -> str:
        if isinstance(response, list) and response and response[0] == b"HELO":
            return "the server asks for the shared-key handshake: set shared_key"
        return f"expected an ack, got {quote(repr(response))}"

    async def close(self) -> None:
        await self._connection.close()
