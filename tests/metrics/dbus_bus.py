"""A real dbus-daemon on a socket in tmp_path, and a small service exporting objects on it (jeepney).

The service answers method calls and ``org.freedesktop.DBus.Properties.Get`` from a table of
(path, interface, member) -> (signature, body) and properties (path, interface, name) -> (signature, value);
anything else gets ``org.freedesktop.DBus.Error.UnknownObject`` / ``UnknownProperty``, as systemd answers.
With ``answer=False`` it owns its name and never replies (a hung service).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jeepney import HeaderFields, MessageType, new_error, new_method_return  # type: ignore[import-untyped]
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.blocking import open_dbus_connection  # type: ignore[import-untyped]

from tests.conftest import require_binary

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


Methods = dict[tuple[str, str, str], tuple[str, tuple[Any, ...]]]
Props = dict[tuple[str, str, str], tuple[str, Any]]


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
            if msg.header.message_type != MessageType.method_call or not answer:
                continue
            fields = msg.header.fields
            path = fields[HeaderFields.path]
            interface = fields.get(HeaderFields.interface, "")
            member = fields[HeaderFields.member]
            if interface == "org.freedesktop.DBus.Properties" and member == "Get":
                prop_interface, prop_name = msg.body
                known = any(p == path for p, _, _ in properties) or any(p == path for p, _, _ in methods)
                if (path, prop_interface, prop_name) in properties:
                    conn.send(new_method_return(msg, "v", (properties[(path, prop_interface, prop_name)],)))
                elif known:
                    error = "org.freedesktop.DBus.Error.UnknownProperty"
                    conn.send(new_error(msg, error, "s", (f"Unknown property {prop_name}",)))
                else:
                    error = "org.freedesktop.DBus.Error.UnknownObject"
                    conn.send(new_error(msg, error, "s", (f"Unknown object {path}",)))
            elif (path, interface, member) in methods:
                signature, body = methods[(path, interface, member)]
                conn.send(new_method_return(msg, signature, body))
            else:
                error = "org.freedesktop.DBus.Error.UnknownMethod"
                conn.send(new_error(msg, error, "s", (f"Unknown method {member}",)))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        conn.close()
