"""selinux: whether SELinux is enabled, and its configured and current enforcement modes.

As go-selinux (which node_exporter uses): SELinux is enabled when selinuxfs is mounted and this
process's security context is not "kernel"; the current mode is selinuxfs's ``enforce`` (1 enforcing,
0 permissive, -1 unreadable), the configured one ``SELINUX=`` of /etc/selinux/config (1 enforcing,
0 permissive, -1 otherwise). Unlike go-selinux, which looks at the exporter's own /sys, /proc and
/etc, the files are read below --path.sysfs, --path.procfs and --path.rootfs, so that a containerised
agent reports the host; and a read-only selinuxfs mount counts (a DaemonSet mounts the host's /sys
read-only).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import gauge, single
from nodeagent.metrics.host.files import read_bytes, read_optional, read_text
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.registry import Collector, register

CONFIG_LIMIT = 64 << 10


def parse_selinux_config(text: str) -> int:
    """``SELINUX=enforcing`` -> 1, ``permissive`` -> 0, anything else (disabled, absent) -> -1.
    Blank lines and ``#`` / ``;`` comments are skipped; the first SELINUX= line counts; quotes around
    the value are dropped."""
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, equals, value = line.partition("=")
        if equals and key == "SELINUX":
            return {"enforcing": 1, "permissive": 0}.get(value.strip('"'), -1)
    return -1


def parse_enforce(data: bytes) -> int:
    """selinuxfs ``enforce``: the bare number (Go's Atoi of the whole file); -1 when it is not one."""
    try:
        return parse_int(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return -1


@register
class SelinuxCollector(Collector):
    name = "selinux"

    def selinuxfs(self) -> str | None:
        mount = self.paths.sys("fs", "selinux")
        try:
            read_bytes(f"{mount}/enforce", 64)
        except FileNotFoundError:
            return None  # the directory exists without selinuxfs mounted on it
        except OSError:
            pass  # mounted, just not readable: the mode is -1
        return mount

    def context(self) -> str | None:
        """This process's security context; None when unreadable (go-selinux then counts SELinux on)."""
        try:
            return read_text(self.paths.proc("self", "attr", "current"), 4096).rstrip("\0")
        except OSError:
            return None

    def collect(self) -> Iterable[Metric]:
        enabled = gauge("node_selinux_enabled", "Whether SELinux is enabled (1) or not (0).")
        mount = self.selinuxfs()
        if mount is None or self.context() == "kernel":
            return [single(enabled, 0.0)]
        try:
            current = parse_enforce(read_bytes(f"{mount}/enforce", 64))
        except OSError:
            current = -1
        config = read_optional(self.paths.root("/etc/selinux/config"), CONFIG_LIMIT)
        return [
            single(enabled, 1.0),
            single(
                gauge(
                    "node_selinux_config_mode",
                    "Configured SELinux mode: 1 enforcing, 0 permissive, -1 disabled.",
                ),
                parse_selinux_config(config or ""),
            ),
            single(
                gauge(
                    "node_selinux_current_mode",
                    "Current SELinux mode: 1 enforcing, 0 permissive, -1 unknown.",
                ),
                current,
            ),
        ]
