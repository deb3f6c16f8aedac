"""A blocking D-Bus client for the systemd and logind collectors, with one deadline per collection.

Imported only by collectors that are switched on (it imports jeepney), so the agent's RSS does not grow
for anyone else. The bus is the system bus, found as godbus finds it (node_exporter's D-Bus library):
``$DBUS_SYSTEM_BUS_ADDRESS``, else ``/var/run/dbus/system_bus_socket``; it is not below ``--path.rootfs``
(a DaemonSet mounts the host's ``/run/dbus/system_bus_socket``). Every call, the connection included,
shares one deadline: a bus or service that never answers costs the scrape at most ``timeout`` seconds.

Why jeepney: pure Python without dependencies, blocking I/O that fits the collectors' worker threads, and
its public pieces (authentication, message builders, parser) let every read carry our deadline. dbus-fast
is asyncio-first with an optional C extension, more than these few read-only calls need.
"""

from __future__ import annotations

import os
import socket
import time
from itertools import count
from types import TracebackType
from typing import Any

from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    DBusErrorResponse,
    HeaderFields,
    Message,
    MessageType,
    Parser,
    Properties,
    new_method_call,
)
from jeepney.bus import get_bus  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import prep_socket  # type: ignore[import-untyped]

DEFAULT_SYSTEM_BUS = "unix:path=/var/run/dbus/system_bus_socket"
MAX_REPLIES_SKIPPED = 10_000  # messages that are not our reply (signals) read while waiting for it


class DBusCallError(Exception):
    """A method call answered with a D-Bus error, or with a reply of another shape than documented."""


def system_bus_address() -> str:
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "") or DEFAULT_SYSTEM_BUS


class SystemBus:
    """One connection for one collection; use as a context manager.

    ``address`` defaults to the system bus (then the connection says Hello, as a bus requires); with
    ``peer=True`` it is a peer-to-peer socket such as systemd's private one (no Hello).
    """

    def __init__(self, timeout: float, address: str | None = None, peer: bool = False) -> None:
        self._deadline = time.monotonic() + timeout
        self._serials = count(1)
        self._parser = Parser()
        self._sock: socket.socket = prep_socket(
            get_bus(address or system_bus_address()), timeout=self._remaining()
        )
        try:
            if not peer:
                self._exchange(message_bus.Hello())
        except BaseException:
            self._sock.close()
            raise

    def __enter__(self) -> SystemBus:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._sock.close()

    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("D-Bus deadline passed")
        return left

    def _exchange(self, message: Message) -> tuple[Any, ...]:
        """Send one call, read until its reply (within the deadline); the reply's body."""
        serial = next(self._serials)
        self._sock.settimeout(self._remaining())
        self._sock.sendall(message.serialise(serial=serial))
        for _ in range(MAX_REPLIES_SKIPPED):
            reply = self._parser.get_next_message()
            while reply is None:
                self._sock.settimeout(self._remaining())
                data = self._sock.recv(65536)
                if not data:
                    raise ConnectionError("D-Bus connection closed")
                self._parser.add_data(data)
                reply = self._parser.get_next_message()
            if reply.header.fields.get(HeaderFields.reply_serial) != serial:
                continue  # a signal, or the reply to a call we gave up on
            if reply.header.message_type == MessageType.error:
                raise DBusCallError(str(DBusErrorResponse(reply)))
            return tuple(reply.body)
        raise DBusCallError("no reply among the messages received")

    def call(
        self,
        service: str,
        path: str,
        interface: str,
        method: str,
        signature: str | None = None,
        body: tuple[Any, ...] = (),
    ) -> tuple[Any, ...]:
        """The reply's body; DBusCallError on an error reply, TimeoutError past the deadline."""
        return self._exchange(new_method_call(DBusAddress(path, service, interface), method, signature, body))

    def get_property(self, service: str, path: str, interface: str, name: str) -> tuple[str, Any]:
        """``org.freedesktop.DBus.Properties.Get``: (signature, value) of the variant."""
        body = self._exchange(Properties(DBusAddress(path, service, interface)).get(name))
        if len(body) != 1 or not isinstance(body[0], tuple) or len(body[0]) != 2:
            raise DBusCallError("Properties.Get: reply is not one variant")
        signature, value = body[0]
        return signature, value
