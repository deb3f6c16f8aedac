"""A blocking D-Bus client for the systemd and logind collectors, with one deadline per collection.

Imported only by collectors that are switched on (it imports jeepney), so the agent's RSS does not grow
for anyone else. The bus is the system bus, found as godbus finds it (node_exporter's D-Bus library):
``$DBUS_SYSTEM_BUS_ADDRESS``, else ``/var/run/dbus/system_bus_socket``; it is not below ``--path.rootfs``
(a DaemonSet mounts the host's ``/run/dbus/system_bus_socket``). Every call, the connection included,
shares one deadline: a bus or service that never answers costs the scrape at most ``timeout`` seconds.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any

from jeepney import DBusAddress, DBusErrorResponse, MessageType, Properties, new_method_call  # type: ignore[import-untyped]
from jeepney.io.blocking import DBusConnection, open_dbus_connection  # type: ignore[import-untyped]

DEFAULT_SYSTEM_BUS = "unix:path=/var/run/dbus/system_bus_socket"


class DBusCallError(Exception):
    """A method call answered with a D-Bus error, or with a reply of another shape than documented."""


def system_bus_address() -> str:
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "") or DEFAULT_SYSTEM_BUS


class SystemBus:
    """One connection to the system bus for one collection; use as a context manager."""

    def __init__(self, timeout: float, address: str | None = None) -> None:
        self._deadline = time.monotonic() + timeout
        self._conn: DBusConnection = open_dbus_connection(
            address or system_bus_address(), auth_timeout=self._remaining()
        )

    def __enter__(self) -> SystemBus:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._conn.close()

    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("D-Bus deadline passed")
        return left

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
        message = new_method_call(DBusAddress(path, service, interface), method, signature, body)
        reply = self._conn.send_and_get_reply(message, timeout=self._remaining())
        if reply.header.message_type == MessageType.error:
            raise DBusCallError(str(DBusErrorResponse(reply)))
        return tuple(reply.body)

    def get_property(self, service: str, path: str, interface: str, name: str) -> tuple[str, Any]:
        """``org.freedesktop.DBus.Properties.Get``: (signature, value) of the variant."""
        message = Properties(DBusAddress(path, service, interface)).get(name)
        reply = self._conn.send_and_get_reply(message, timeout=self._remaining())
        if reply.header.message_type == MessageType.error:
            raise DBusCallError(str(DBusErrorResponse(reply)))
        body = reply.body
        if len(body) != 1 or not isinstance(body[0], tuple) or len(body[0]) != 2:
            raise DBusCallError("Properties.Get: reply is not one variant")
        signature, value = body[0]
        return signature, value
