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

import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent.config.schema import REQUIRED, Field, Section
from nodeagent.config.values import parse_str, positive_duration
from nodeagent.logs.encoding import syslog_timestamp
from nodeagent.logs.record import Record
from nodeagent.logs.sinks._tcp import TCPConnection, address_parser
from nodeagent.logs.sinks._tls import ClientTLS, tls_field
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


parse_address = address_parser(514)


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


def frame(message: bytes) -> bytes:
    """RFC 6587 octet counting."""
    return b"%d %s" % (len(message), message)


# The message options the syslog and relp sinks share (format_message's arguments).
MESSAGE_FIELDS = (
    Field("facility", FACILITIES["user"], "Facility name or number 0-23.", parse_facility),
    Field("app_name", None, "APP-NAME (default: the container name, else nodeagent).", parse_str),
)


class SyslogSink(Sink):
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

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        values = self.read_options()
        self.host, self.port = values["address"]
        self.facility = values["facility"]
        self.app_name = values["app_name"] or None
        self.timeout = values["timeout"]
        self._connection = TCPConnection(
            name, self.host, self.port, self.timeout, ClientTLS(name, values["tls"])
        )

    async def start(self) -> None:
        # Not fatal when the server is down: send connects (and fails retryably) until it is up.
        with contextlib.suppress(RetryableSinkError):
            await self._connection.connect()

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        data = b"".join([frame(format_message(record, self.facility, self.app_name)) for record in batch])
        await self._connection.ensure_open()
        await self._connection.write(data)

    async def close(self) -> None:
        await self._connection.close()
