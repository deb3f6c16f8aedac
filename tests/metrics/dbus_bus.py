"""A real dbus-daemon on a socket in tmp_path, and a small service exporting objects on it (jeepney).

The service answers method calls and ``org.freedesktop.DBus.Properties.Get`` from a table of
(path, interface, member) -> (signature, body) and properties (path, interface, name) -> (signature, value);
anything else gets ``org.freedesktop.DBus.Error.UnknownObject`` / ``UnknownProperty``, as systemd answers.
With ``answer=False`` it owns its name and never replies (a hung service).
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jeepney import HeaderFields, Message, MessageType, Parser, new_error, new_method_return  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]

from tests.conftest import require_binary
from tests.metrics.conftest import Scraped, scrape_tree

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


@contextmanager
def dbus_daemon(tmp_path: Path) -> Iterator[str]:
    """Start dbus-daemon with its own config; yield its address."""
    binary = require_binary("dbus-daemon", "/usr/bin/dbus-daemon")
    socket = tmp_path / "system_bus_socket"
    config = tmp_path / "bus.conf"
    config.write_text(CONFIG.format(socket=socket))
    proc = subprocess.Popen(
        [binary, f"--config-file={config}", "--nofork", "--print-address=1", "--nopidfile"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        assert address.startswith("unix:"), proc.stderr.read() if proc.stderr else address
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def system_bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A dbus-daemon that the collectors take for the system bus (``DBUS_SYSTEM_BUS_ADDRESS``)."""
    with dbus_daemon(tmp_path) as address:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        yield address


def scrape_hung_service(address: str, service: str, tmp_path: Path, collector: str) -> tuple[Scraped, float]:
    """Scrape ``collector`` while ``service`` owns its name and never answers: (result, seconds)."""
    with bus_service(address, service, {}, {}, answer=False):
        start = time.monotonic()
        got = scrape_tree(tmp_path, collector)
        return got, time.monotonic() - start


Methods = dict[tuple[str, str, str], tuple[str, tuple[Any, ...]]]
Props = dict[tuple[str, str, str], tuple[str, Any]]


def answer_call(msg: Message, methods: Methods, properties: Props) -> Message | None:
    """The reply to one method call from the tables; None for anything that is not a method call."""
    if msg.header.message_type != MessageType.method_call:
        return None
    fields = msg.header.fields
    path = fields[HeaderFields.path]
    interface = fields.get(HeaderFields.interface, "")
    member = fields[HeaderFields.member]
    if interface == "org.freedesktop.DBus.Properties" and member == "Get":
        prop_interface, prop_name = msg.body
        if (path, prop_interface, prop_name) in properties:
            return new_method_return(msg, "v", (properties[(path, prop_interface, prop_name)],))
        if any(p == path for p, _, _ in properties) or any(p == path for p, _, _ in methods):
            error = "org.freedesktop.DBus.Error.UnknownProperty"
            return new_error(msg, error, "s", (f"Unknown property {prop_name}",))
        return new_error(msg, "org.freedesktop.DBus.Error.UnknownObject", "s", (f"Unknown object {path}",))
    if (path, interface, member) in methods:
        signature, body = methods[(path, interface, member)]
        return new_method_return(msg, signature, body)
    return new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"Unknown method {member}",))


@contextmanager
def bus_service(
    address: str, name: str, methods: Methods, properties: Props, answer: bool = True
) -> Iterator[None]:
    """Own ``name`` on the bus and serve ``methods`` / ``properties`` from a thread until the block ends."""
    conn = open_dbus_connection(address)
    reply = conn.send_and_get_reply(message_bus.RequestName(name))
    assert reply.body == (1,), reply.body  # primary owner
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                msg = conn.receive(timeout=0.05)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = answer_call(msg, methods, properties) if answer else None
            if reply is not None:
                conn.send(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        conn.close()


@contextmanager
def peer_service(socket_path: Path, methods: Methods, properties: Props) -> Iterator[str]:
    """A peer-to-peer D-Bus server (no bus daemon, as systemd's private socket): EXTERNAL auth, then
    replies from the tables to one client at a time. Yields its address."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(socket_path))
    server.listen(4)
    server.settimeout(0.05)
    stop = threading.Event()

    def handle(client: socket.socket) -> None:
        client.settimeout(5)
        received, answered = b"", False
        while b"BEGIN\r\n" not in received:  # the client's lines: NUL, AUTH EXTERNAL <uid hex>, BEGIN
            auth = received.find(b"AUTH EXTERNAL")
            if not answered and auth >= 0 and received.find(b"\r\n", auth) >= 0:
                client.sendall(b"OK " + b"0" * 32 + b"\r\n")
                answered = True
                continue
            data = client.recv(4096)
            if not data:
                return
            received += data
        parser, serial = Parser(), 1
        parser.add_data(received.split(b"BEGIN\r\n", 1)[1])  # messages may follow BEGIN in one read
        while not stop.is_set():
            while (msg := parser.get_next_message()) is not None:
                reply = answer_call(msg, methods, properties)
                if reply is not None:
                    client.sendall(reply.serialise(serial=serial))
                    serial += 1
            try:
                data = client.recv(65536)
            except OSError:
                return
            if not data:
                return
            parser.add_data(data)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            with client:
                handle(client)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"unix:path={socket_path}"
    finally:
        stop.set()
        thread.join(timeout=10)
        server.close()
