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
from nodeagent.logs.record import Record, RecordBatch, Records
from nodeagent.logs.sinks._http import SecretFile, check_password
from nodeagent.logs.sinks._tcp import TCPConnection, address_parser
from nodeagent.logs.sinks._tls import ClientTLS, tls_field
from nodeagent.logs.sinks.base import RetryableSinkError, Sink
from nodeagent.safeio import quote

DEFAULT_PORT = 24224
DEFAULT_TAG = "nodeagent"
MISSING_TAG_PART = "_"
MAX_TAG_CHARS = 512
MAX_RESPONSE_BYTES = 64 * 1024  # an ack, HELO or PONG is far smaller: more is a broken server
_READ_BYTES = 64 * 1024
_GZIP_IN_THREAD_BYTES = 256 * 1024
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_SECONDS_NANOS = struct.Struct(">II")
_EVENT_TIME_HEAD = b"\xd7\x00"  # fixext 8 of type 0: EventTime
_MAX_EVENT_NANOS = (1 << 32) * 1_000_000_000
_ENTRY_HEAD = b"\x92"  # an entry is a fixarray of two: [time, record]
# Record.to_dict's own keys in its order; what follows them is shared by a run (file, node, kubernetes).
_RUN_COLUMNS = ("time", "message", "stream")
_RUN_SHARED = ("file", "node", "kubernetes")
_KEY_TIME, _KEY_MESSAGE, _KEY_STREAM = b"\xa4time", b"\xa7message", b"\xa6stream"


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

    @property
    def shared_by_run(self) -> bool:
        """Only fields that the records of one file share (file, node, kubernetes) are used."""
        return all(isinstance(part, str) or part[0] in _RUN_SHARED for part in self.parts)

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


def event_time(record_time: str | None) -> bytes:
    """The packed EventTime (fixext 8, type 0: seconds and nanoseconds, big-endian) of a record time; the
    current time when the record's is not RFC 3339 (or outside what 32 bits of seconds hold)."""
    nanos = unix_nanos(record_time)
    if nanos is None or not 0 <= nanos < _MAX_EVENT_NANOS:
        nanos = time.time_ns()
    return _EVENT_TIME_HEAD + _SECONDS_NANOS.pack(*divmod(nanos, 1_000_000_000))


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


def _pack_any(packer: Any, value: Any) -> bytes:
    try:
        return bytes(packer.pack(value))
    except (OverflowError, TypeError, ValueError):
        return bytes(packer.pack(_plain(value)))


def _entries_one_by_one(records: Sequence[Record], tag: TagTemplate, packer: Any) -> list[tuple[str, bytes]]:
    """``(tag, entry)`` per record: ``[EventTime, record.to_dict()]``."""
    entries = []
    for record in records:
        data = record.to_dict()
        entries.append((tag.render(data), _ENTRY_HEAD + event_time(record.time) + _pack_any(packer, data)))
    return entries


def _event_times(times: Sequence[str]) -> list[bytes]:
    """:func:`event_time` of each, the seconds worked out once per distinct second."""
    seconds_of: dict[str, int] = {}
    pack = _SECONDS_NANOS.pack
    packed = []
    for text in times:
        seconds = seconds_of.get(text[:19]) if len(text) == 30 and text[29] == "Z" else None
        fraction = text[20:29]
        if seconds is None or not fraction.isdigit():
            packed.append(event_time(text))
            nanos = unix_nanos(text)
            if nanos is not None and len(text) == 30 and text[29] == "Z" and fraction.isdigit():
                seconds_of[text[:19]] = nanos // 1_000_000_000
            continue
        packed.append(_EVENT_TIME_HEAD + pack(seconds, int(fraction)))
    return packed


def _entries_of_run(run: Records, tag: TagTemplate, packer: Any) -> tuple[str, list[bytes]] | None:
    """The entries of a run of one file's records (:class:`Records`) and their tag, built from its
    columns: what a run shares (file, node, kubernetes; the tag) is packed once. None when the run's
    records are not exactly those columns (filters added fields) or the tag depends on each record."""
    if not run or getattr(run, "fields", None) is not None or not tag.shared_by_run:
        return None
    first = run[0].to_dict()
    shared = [key for key in _RUN_SHARED if key in first]
    if list(first) != [*_RUN_COLUMNS, *shared]:
        return None
    head = _ENTRY_HEAD, _pack_map_header(len(first)), _KEY_TIME
    tail = b"".join(packer.pack(key) + _pack_any(packer, first[key]) for key in shared)
    pack = packer.pack
    try:
        entries = [
            b"".join(
                (head[0], time_, head[1], head[2], pack(t), _KEY_MESSAGE, pack(m), _KEY_STREAM, pack(s), tail)
            )
            for time_, t, m, s in zip(
                _event_times(run.times), run.times, run.messages, run.streams, strict=True
            )
        ]
    except (OverflowError, TypeError, ValueError):  # a column holds what msgpack cannot: one by one
        return None
    return tag.render(first), entries


def _pack_map_header(size: int) -> bytes:
    return bytes((0x80 | size,)) if size < 16 else b"\xde" + size.to_bytes(2, "big")


def pack_messages(
    batch: Sequence[Record], tag: TagTemplate, max_message_bytes: int
) -> list[tuple[str, bytes, int]]:
    """``(tag, entries stream, entry count)`` per message: records grouped by tag in order of their first
    appearance (a tag's records keep their order), split when a message reaches ``max_message_bytes``."""
    packer = _msgpack().Packer(unicode_errors="replace")
    runs: list[Sequence[Record]] = list(batch.runs) if isinstance(batch, RecordBatch) else [batch]
    building: dict[str, _Message] = {}
    done: list[_Message] = []

    def add(entry_tag: str, entries: list[bytes], size: int) -> None:
        message = building.get(entry_tag)
        if message is None and size <= max_message_bytes:
            message = building[entry_tag] = _Message(entry_tag)
        if message is not None and message.size + size <= max_message_bytes:
            message.add(entries, size)
        elif len(entries) > 1:  # does not fit whole: entry by entry, starting new messages as needed
            for entry in entries:
                add(entry_tag, [entry], len(entry))
        else:  # a new message (alone in it, an entry larger than the limit still goes)
            if message is not None:
                done.append(message)
            building[entry_tag] = _Message(entry_tag)
            building[entry_tag].add(entries, size)

    for run in runs:
        of_run = _entries_of_run(run, tag, packer) if isinstance(run, Records) else None
        if of_run is not None:
            entries = of_run[1]
            add(of_run[0], entries, sum(map(len, entries)))
            continue
        for entry_tag, entry in _entries_one_by_one(run, tag, packer):
            add(entry_tag, [entry], len(entry))
    done.extend(building.values())
    # Messages of one tag stay in order; across tags the order does not matter to the server.
    return [(m.tag, b"".join(m.entries), len(m.entries)) for m in done]


class _Message:
    """One forward message being built: its tag, the packed entries and their size."""

    __slots__ = ("entries", "size", "tag")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.entries: list[bytes] = []
        self.size = 0

    def add(self, entries: list[bytes], size: int) -> None:
        self.entries.extend(entries)
        self.size += size


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
# The server's answers (read with ``raw=True``: every string as bytes). Pure: anything else a server
# sends raises ForwardProtocolError.


def next_response(unpacker: Any) -> tuple[bool, Any]:
    """``(True, object)`` when a whole object is buffered, ``(False, None)`` when more bytes are needed."""
    msgpack = _msgpack()
    try:
        return True, next(unpacker)
    except StopIteration:
        return False, None
    except (ValueError, msgpack.UnpackException) as exc:
        raise ForwardProtocolError(f"malformed msgpack from the server: {type(exc).__name__}") from None


def read_helo(helo: Any) -> tuple[bytes, bytes, bool]:
    """HELO's ``(nonce, auth salt, keepalive)``; an empty auth salt means no user authentication."""
    if not (isinstance(helo, list) and len(helo) == 2 and helo[0] == b"HELO" and isinstance(helo[1], dict)):
        raise ForwardProtocolError(f"expected HELO, got {quote(repr(helo))}")
    options = helo[1]
    keepalive = options.get(b"keepalive", True) is not False
    return _as_bytes(options.get(b"nonce", b"")), _as_bytes(options.get(b"auth", b"")), keepalive


def check_pong(pong: Any, *, salt: bytes, hostname: bytes, nonce: bytes, shared_key: bytes) -> None:
    """PONG must accept us and prove the server knows the shared key (a digest with its own hostname)."""
    if not (isinstance(pong, list) and len(pong) == 5 and pong[0] == b"PONG"):
        raise ForwardProtocolError(f"expected PONG, got {quote(repr(pong))}")
    _, accepted, reason, server_hostname, server_digest = pong
    if accepted is not True:
        raise ForwardProtocolError(f"the server refused us: {quote(_as_bytes(reason))}")
    server_hostname = _as_bytes(server_hostname)
    # With the same name the server's digest would be ours: a server without the key could echo it.
    if server_hostname == hostname:
        raise ForwardProtocolError("the server has our self_hostname: set a different self_hostname")
    expected = sha512_hex(salt, server_hostname, nonce, shared_key)
    if not hmac.compare_digest(_as_bytes(server_digest), expected.encode()):
        raise ForwardProtocolError(
            "the server's shared key digest is wrong (it does not know the shared key)"
        )


def check_ack(response: Any, chunk: str) -> None:
    if isinstance(response, list) and response and response[0] == b"HELO":
        raise ForwardProtocolError("the server asks for the shared-key handshake: set shared_key")
    if not isinstance(response, dict):
        raise ForwardProtocolError(f"expected an ack, got {quote(repr(response))}")
    if response.get(b"ack") != chunk.encode():
        raise ForwardProtocolError(f"ack for another chunk: {quote(repr(response))}")


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
        nonce, auth_salt, self._server_keepalive = read_helo(await self._read_response())
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
        check_pong(
            await self._read_response(), salt=salt, hostname=hostname, nonce=nonce, shared_key=shared_key
        )

    async def _read_response(self) -> Any:
        """The server's next msgpack object (no timeout here: the callers set one)."""
        reader = self._connection.reader
        assert reader is not None and self._unpacker is not None
        while True:
            complete, response = next_response(self._unpacker)
            if complete:
                return response
            data = await reader.read(_READ_BYTES)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            try:
                self._unpacker.feed(data)
            except _msgpack().BufferFull:
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
                check_ack(await self._read_response(), chunk)
            return
        except TimeoutError:
            reason = f"no ack within {self.ack_timeout:g}s"
        except (OSError, asyncio.IncompleteReadError) as exc:
            reason = f"connection lost before the ack: {type(exc).__name__}: {exc}"
        except ForwardProtocolError as exc:
            reason = str(exc)
        await self._connection.close()
        metrics.SINK_ACKS_MISSED.labels(self.name).inc()
        raise RetryableSinkError(f"{self.name}: {self._connection.peer}: {reason}")

    async def close(self) -> None:
        await self._connection.close()
