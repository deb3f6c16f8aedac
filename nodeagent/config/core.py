"""The agent's core settings (web server, host paths, own logging, which jobs run), and the full table.

Collector switches and options are not listed here: :func:`nodeagent.metrics.registry.collector_settings`
generates them from the collector registry. :func:`settings_table` joins both.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from nodeagent.config.settings import Setting, Settings
from nodeagent.config.values import (
    non_negative_int,
    parse_bool,
    parse_choice,
    parse_listen_address,
    parse_optional_bool,
    parse_url_path,
    positive_duration,
)

LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("logfmt", "json")


def parse_listen_addresses(raw: Any) -> str | tuple[str, ...]:
    """One ``[host]:port``, or a list of them (the flag repeats, as node_exporter's): several come back
    as a tuple, one as itself."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError("expected [host]:port such as :9100, or a list of them")
    addresses = tuple(dict.fromkeys(parse_listen_address(item) for item in items))
    return addresses[0] if len(addresses) == 1 else addresses


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "web.listen-address",
        ":9100",
        "Address to serve metrics, /healthz and /readyz on; repeat the flag to listen on several.",
        parse=parse_listen_addresses,
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
        parse=non_negative_int,
        metavar="N",
    ),
    Setting(
        "web.max-connections",
        512,
        "Open HTTP connections at most (at the limit the oldest idle one is closed); also kept below "
        "half the open-file limit. 0 disables the limit.",
        parse=non_negative_int,
        metavar="N",
    ),
    Setting(
        "web.scrape-timeout",
        10.0,
        "A scrape not done by then is answered 503, and a collector call still running is skipped by "
        "later scrapes until it returns (Prometheus' scrape-timeout header can lower it).",
        parse=positive_duration,
        metavar="DURATION",
    ),
    Setting(
        "web.stall-timeout",
        60.0,
        "/readyz answers 503 while a job's blocking call (a collector, the log shipper's file I/O) has "
        "not returned for this long.",
        parse=positive_duration,
        metavar="DURATION",
    ),
    Setting(
        "web.config.file",
        None,
        "Web configuration file in exporter-toolkit's format (TLS, basic auth, headers), as node_exporter's; "
        "read again when it changes.",
        metavar="FILE",
    ),
    Setting(
        "web.systemd-socket",
        False,
        "Serve on the sockets systemd passes (socket activation: LISTEN_FDS) instead of listen addresses.",
        parse=parse_bool,
        is_switch=True,
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
