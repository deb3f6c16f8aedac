"""Syslog over TCP: RFC 5424 messages with RFC 6587 octet-counting framing (``<length> <message>``).

Options:
  address    ``host:port`` or ``[v6]:port`` (required; the port defaults to 514)
  facility   name (kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp,
             security, console, solaris-cron, local0..local7) or number 0-23 (default user)
  app_name   APP-NAME for every message (default: the record's container name, else ``nodeagent``)
  timeout    connect and write timeout (default 10s)
  tls        TLS towards the server (RFC 5425 framing is the same octet counting): ca_file, cert_file,
             key_file, server_name, insecure_skip_verify, min_version; see :mod:`._tls`
Each message: PRI (severity 3 for stderr, 6 otherwise), VERSION 1, TIMESTAMP (microseconds, UTC),
HOSTNAME (the record's node), APP-NAME, PROCID and MSGID ``-``, structured data
``[k8s@32473 namespace=".." pod=".." container=".."]`` for container logs (``-`` otherwise), then the
message as UTF-8. TCP has no acknowledgements: ``send`` returns once the kernel has the bytes. A connection
the server closed is noticed before writing and replaced; any failure closes it and is retryable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent.config.schema import REQUIRED, Field, Section
from nodeagent.config.values import parse_str, positive_duration
from nodeagent.logs.encoding import syslog_timestamp
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._tls import ClientTLS, TLSFileError, tls_field
from nodeagent.logs.sinks.base import RetryableSinkError, Sink

FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    "solaris-cron": 15,
    **{f"local{n}": 16 + n for n in range(8)},
}
SEVERITY_ERROR = 3
SEVERITY_INFO = 6
# 32473 is the private enterprise number RFC 5612 reserves for documentation and examples.
SD_ID = "k8s@32473"
SD_FIELDS = ("namespace", "pod", "container")
DEFAULT_APP_NAME = "nodeagent"


def parse_address(raw: Any, default_port: int | None = 514) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``; without a port: ``default_port``, or an error when that is None."""
    text = parse_str(raw).strip()
    if "@" in text:  # not a host name: most likely credentials, which syslog has no place for
        raise ValueError("expected host:port without a user part ('@')")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"expected host:port or [v6 address]:port, got {raw!r}")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" in text:
        raise ValueError(f"write an IPv6 address in brackets, e.g. [::1]:514, got {raw!r}")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"expected host:port, got {raw!r}")
    if not port_text and default_port is None:
        raise ValueError(f"expected host:port (no default port), got {raw!r}")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ValueError(f"bad port in {raw!r}") from None
    if port is None or not 0 < port < 65536:
        raise ValueError(f"port out of range in {raw!r}")
    return host, port


def parse_facility(raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        if 0 <= raw <= 23:
            return raw
        raise ValueError(f"facility number must be 0-23, got {raw}")
    text = parse_str(raw).strip().lower()
    if text.isdigit() and int(text) <= 23:
        return int(text)
    if text not in FACILITIES:
        raise ValueError(f"unknown facility {raw!r} (expected one of {', '.join(FACILITIES)} or 0-23)")
    return FACILITIES[text]


def header_field(value: Any, max_len: int) -> str:
    """A HEADER field: printable US-ASCII without spaces (anything else becomes '_'), or '-'."""
    if value is None:
        return "-"
    text = "".join(c if 33 <= ord(c) <= 126 else "_" for c in str(value)[:max_len])
    return text or "-"


def escape_param_value(value: str) -> str:
    """RFC 5424 PARAM-VALUE: '"', '\\' and ']' are escaped with a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(record: Record) -> str:
    kubernetes = record.kubernetes or {}
    params = [
        f'{name}="{escape_param_value(str(kubernetes[name]))}"'
        for name in SD_FIELDS
        if kubernetes.get(name) not in (None, "")
    ]
    return f"[{SD_ID} {' '.join(params)}]" if params else "-"


def format_message(record: Record, facility: int, app_name: str | None) -> bytes:
    """One RFC 5424 SYSLOG-MSG (without framing)."""
    severity = SEVERITY_ERROR if record.stream == "stderr" else SEVERITY_INFO
    container = (record.kubernetes or {}).get("container")
    app = header_field(app_name or container or DEFAULT_APP_NAME, 48)
    header = (
        f"<{facility * 8 + severity}>1 {syslog_timestamp(record.time)} "
        f"{header_field(record.node, 255)} {app} - - {structured_data(record)}"
    )
    if not record.message:
        return header.encode("utf-8", "replace")
    return f"{header} {record.message}".encode("utf-8", "replace")


# The message options the syslog and relp sinks share (read into format_message's arguments).
MESSAGE_FIELDS = (
    Field("facility", FACILITIES["user"], "Facility name or number 0-23.", parse_facility),
    Field("app_name", None, "APP-NAME (default: the container name, else nodeagent).", parse_str),
)


async def open_stream(
    sink_name: str, host: str, port: int, tls: ClientTLS, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP (or TLS, when ``tls`` is on) connection; failures are RetryableSinkError.

    The write buffer limit is 0: ``drain()`` then waits until every byte is handed to the kernel.
    """
    try:
        context = await asyncio.to_thread(tls.context)
    except TLSFileError as exc:
        raise RetryableSinkError(f"{sink_name}: {exc}") from None
    server_hostname = (tls.server_name or host) if context is not None else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=server_hostname), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise RetryableSinkError(
            f"{sink_name}: cannot connect to {host}:{port}: {type(exc).__name__}: {exc}"
        ) from exc
    writer.transport.set_write_buffer_limits(high=0)
    return reader, writer


async def close_stream(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def frame(message: bytes) -> bytes:
    """RFC 6587 octet counting."""
    return b"%d %s" % (len(message), message)


class SyslogStreamSink(Sink):
    """What the syslog and relp sinks share: address, message options, TLS and one connection."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        values = self.read_options()
        self.settings = values
        self.host, self.port = values["address"]
        self.facility = values["facility"]
        self.app_name = values["app_name"] or None
        self.timeout = values["timeout"]
        self._tls = ClientTLS(name, values["tls"])
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def _connected(self) -> bool:
        return (
            self._writer is not None
            and self._reader is not None
            and not self._writer.is_closing()
            and not self._reader.at_eof()
        )

    async def _connect(self) -> None:
        await self._disconnect()
        self._reader, self._writer = await open_stream(
            self.name, self.host, self.port, self._tls, self.timeout
        )

    async def _disconnect(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        await close_stream(writer)

    async def start(self) -> None:
        # Not fatal when the server is down: send connects (and fails retryably) until it is up.
        with contextlib.suppress(RetryableSinkError):
            await self._connect()

    async def close(self) -> None:
        await self._disconnect()


class SyslogSink(SyslogStreamSink):
    type: ClassVar[str] = "syslog"
    option_schema: ClassVar[Section] = Section(
        (
            Field("address", REQUIRED, "host:port or [v6]:port (port 514 by default).", parse_address),
            *MESSAGE_FIELDS,
            Field("timeout", 10.0, "Connect and write timeout.", positive_duration),
            tls_field(),
        ),
        subject="a syslog sink",
    )

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        data = b"".join([frame(format_message(record, self.facility, self.app_name)) for record in batch])
        if not self._connected():
            await self._connect()
        assert self._writer is not None
        try:
            self._writer.write(data)
            await asyncio.wait_for(self._writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            await self._disconnect()
            raise RetryableSinkError(
                f"{self.name}: sending to {self.host}:{self.port} failed: {type(exc).__name__}: {exc}"
            ) from exc
