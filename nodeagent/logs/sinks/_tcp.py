"""One TCP (or TLS) connection to a sink's server, shared by the stream sinks (syslog, forward).

:class:`TCPConnection` connects with a timeout, notices a connection the server closed before the next
write, and turns every failure into a :class:`RetryableSinkError` after closing the connection (the
next send connects again). ``address`` options go through :func:`address_parser`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from nodeagent.config.values import parse_str
from nodeagent.logs import metrics
from nodeagent.logs.sinks._tls import ClientTLS, TLSFileError
from nodeagent.logs.sinks.base import RetryableSinkError


def address_parser(default_port: int) -> Callable[[Any], tuple[str, int]]:
    """The parser of an ``address`` option: ``host:port``, ``[v6]:port`` or a host alone."""

    def parse_address(raw: Any) -> tuple[str, int]:
        text = parse_str(raw).strip()
        if "@" in text:  # not a host name: most likely credentials, which have no place here
            raise ValueError("expected host:port without a user part ('@')")
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"expected host:port or [v6 address]:port, got {raw!r}")
            port_text = rest[1:]
        elif text.count(":") == 1:
            host, _, port_text = text.partition(":")
        elif ":" in text:
            raise ValueError(f"write an IPv6 address in brackets, e.g. [::1]:{default_port}, got {raw!r}")
        else:
            host, port_text = text, ""
        if not host:
            raise ValueError(f"expected host:port, got {raw!r}")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ValueError(f"bad port in {raw!r}") from None
        if not 0 < port < 65536:
            raise ValueError(f"port out of range in {raw!r}")
        return host, port

    return parse_address


class TCPConnection:
    """A sink's connection: ``reader``/``writer`` are set between :meth:`connect` and :meth:`close`."""

    def __init__(self, sink_name: str, host: str, port: int, timeout: float, tls: ClientTLS) -> None:
        self.sink_name = sink_name
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    @property
    def peer(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def is_open(self) -> bool:
        """Connected, and the server has not closed its side (checked without blocking)."""
        return (
            self.writer is not None
            and self.reader is not None
            and not self.writer.is_closing()
            and not self.reader.at_eof()
        )

    async def connect(self) -> None:
        """A new connection (the old one closed); raises RetryableSinkError."""
        await self.close()
        try:
            context = await asyncio.to_thread(self.tls.context)
        except TLSFileError as exc:
            raise RetryableSinkError(f"{self.sink_name}: {exc}") from None
        server_hostname = (self.tls.server_name or self.host) if context is not None else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=context, server_hostname=server_hostname),
                self.timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise RetryableSinkError(
                f"{self.sink_name}: cannot connect to {self.peer}: {type(exc).__name__}: {exc}"
            ) from exc
        metrics.SINK_CONNECTIONS.labels(self.sink_name).inc()
        # drain() then waits until every byte is handed to the kernel, not just below a high-water mark.
        writer.transport.set_write_buffer_limits(high=0)
        self.reader, self.writer = reader, writer

    async def ensure_open(self) -> bool:
        """Connect unless the connection is still open; True when this made a new connection."""
        if self.is_open():
            return False
        await self.connect()
        return True

    async def write(self, data: bytes) -> None:
        """Hand ``data`` to the kernel within the timeout; on failure close and raise RetryableSinkError."""
        assert self.writer is not None
        try:
            self.writer.write(data)
            await asyncio.wait_for(self.writer.drain(), self.timeout)
        except (OSError, TimeoutError) as exc:
            await self.close()
            raise RetryableSinkError(
                f"{self.sink_name}: sending to {self.peer} failed: {type(exc).__name__}: {exc}"
            ) from exc

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
