"""The agent's core settings (web server, host paths, own logging, which jobs run), and the full table.

Collector switches and options are not listed here: :func:`nodeagent.metrics.registry.collector_settings`
generates them from the collector registry. :func:`settings_table` joins both.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

from nodeagent.config import Setting, Settings, parse_bool, parse_choice, parse_duration, parse_int, parse_str

LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")

_ADDRESS = re.compile(r"^(?:\[(?P<ipv6>[0-9A-Fa-f:.%\w]+)\]|(?P<host>[^:\[\]\s]*)):(?P<port>\d{1,5})$")


def split_listen_address(address: str) -> tuple[str | None, int]:
    """``:9100`` -> (None, 9100) (all interfaces); ``127.0.0.1:9100``; ``[::1]:9100`` -> ("::1", 9100)."""
    match = _ADDRESS.match(address.strip())
    if not match:
        raise ValueError(f"expected [host]:port such as :9100 or 127.0.0.1:9100, got {address!r}")
    port = int(match["port"])
    if port > 65535:
        raise ValueError(f"port {port} is out of range in {address!r}")
    host = match["ipv6"] or match["host"] or None
    return host, port


def parse_listen_address(raw: Any) -> str:
    text = parse_str(raw).strip()
    split_listen_address(text)
    return text


def parse_url_path(raw: Any) -> str:
    text = parse_str(raw).strip()
    if not text.startswith("/") or any(c in text for c in "?# "):
        raise ValueError(f"expected a URL path starting with '/', got {raw!r}")
    return text


def parse_non_negative_int(raw: Any) -> int:
    value = parse_int(raw)
    if value < 0:
        raise ValueError(f"must not be negative, got {value}")
    return value


def parse_positive_duration(raw: Any) -> float:
    value = parse_duration(raw)
    if value <= 0:
        raise ValueError(f"must be more than zero, got {raw!r}")
    return value


def parse_optional_bool(raw: Any) -> bool | None:
    return None if raw is None else parse_bool(raw)


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "web.listen-address",
        ":9100",
        "Address to serve metrics, /healthz and /readyz on.",
        parse=parse_listen_address,
        metavar="[HOST]:PORT",
    ),
    Setting(
        "web.telemetry-path",
        "/metrics",
        "Path under which to expose metrics.",
        parse=parse_url_path,
        metavar="PATH",
    ),
    Setting(
        "web.max-requests",
        40,
        "Maximum number of concurrent scrapes; more get 503. 0 disables the limit.",
        parse=parse_non_negative_int,
        metavar="N",
    ),
    Setting(
        "web.max-connections",
        512,
        "Open HTTP connections at most (at the limit the oldest idle one is closed); also kept below "
        "half the open-file limit. 0 disables the limit.",
        parse=parse_non_negative_int,
        metavar="N",
    ),
    Setting(
        "web.scrape-timeout",
        10.0,
        "A scrape not done by then is answered 503, and a collector call still running is skipped by "
        "later scrapes until it returns (Prometheus' scrape-timeout header can lower it).",
        parse=parse_positive_duration,
        metavar="DURATION",
    ),
    Setting(
        "web.stall-timeout",
        60.0,
        "/readyz answers 503 while a job's blocking call (a collector, the log shipper's file I/O) has "
        "not returned for this long.",
        parse=parse_positive_duration,
        metavar="DURATION",
    ),
    Setting(
        "web.disable-exporter-metrics",
        False,
        "Leave out the agent's process_* and python_* metrics.",
        parse=parse_bool,
        is_switch=True,
    ),
    Setting("path.procfs", "/proc", "procfs mountpoint (the host's /proc).", metavar="DIR"),
    Setting("path.sysfs", "/sys", "sysfs mountpoint (the host's /sys).", metavar="DIR"),
    Setting(
        "path.rootfs", "/", "Root of the host filesystem (mounts are reported relative to it).", metavar="DIR"
    ),
    Setting("path.udev.data", "/run/udev/data", "udev data directory.", metavar="DIR"),
    Setting(
        "collector.disable-defaults",
        False,
        "Start with every collector off; enable them one by one with --collector.NAME.",
        parse=parse_bool,
        is_switch=True,
    ),
    Setting(
        "log.level",
        "info",
        f"Lowest level of the agent's own log lines: {', '.join(LOG_LEVELS)}.",
        parse=parse_choice(*LOG_LEVELS),
        metavar="LEVEL",
    ),
    Setting(
        "log.format",
        "logfmt",
        f"Format of the agent's own log lines: {', '.join(LOG_FORMATS)}.",
        parse=parse_choice(*LOG_FORMATS),
        metavar="FORMAT",
    ),
    Setting(
        "node-name",
        None,
        "Name of this node, stamped on shipped log records (default: $NODE_NAME, else the hostname).",
        metavar="NAME",
    ),
    Setting(
        "metrics",
        True,
        "Run the node collectors (off: /metrics carries only the agent's own metrics).",
        parse=parse_bool,
        is_switch=True,
    ),
    Setting(
        "logs",
        None,
        "Run the log shipper (default: the logs section's 'enabled', which is on).",
        parse=parse_optional_bool,
        is_switch=True,
    ),
)


def settings_table() -> dict[str, Setting]:
    """Every setting: the core ones above, then the collectors' (generated from the registry)."""
    from nodeagent.metrics.registry import collector_settings

    table = {setting.key: setting for setting in CORE_SETTINGS}
    for key, setting in collector_settings().items():
        if key in table:
            raise RuntimeError(f"collector setting {key!r} collides with a core setting")
        table[key] = setting
    return table


def node_name(settings: Settings) -> str:
    """--node-name, else $NODE_NAME (the downward API sets it in the DaemonSet), else the hostname."""
    return settings.get("node-name") or os.environ.get("NODE_NAME") or socket.gethostname()
