"""uname: node_uname_info, the kernel's uname(2) fields as labels.

The values are those of the agent's own UTS namespace, as node_exporter reports them: in a
Kubernetes pod, ``nodename`` is the node's host name only when the pod shares the host's UTS
namespace (``hostNetwork: true`` gives that; our DaemonSet sets it). ``domainname`` (NIS domain)
is not in os.uname(); it is read from <procfs>/sys/kernel/domainname, which is per UTS namespace
in the same way.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import Paths, read_attribute, valid_text
from nodeagent.metrics.registry import Collector, register

LABELS = ("sysname", "release", "version", "machine", "nodename", "domainname")


def read_uname(paths: Paths) -> dict[str, str]:
    """The six node_uname_info label values."""
    info = os.uname()
    try:
        domainname = read_attribute(paths.proc("sys", "kernel", "domainname"))
    except OSError:
        domainname = "(none)"  # what the kernel reports when none is set
    return {
        "sysname": valid_text(info.sysname),
        "release": valid_text(info.release),
        "version": valid_text(info.version),
        "machine": valid_text(info.machine),
        "nodename": valid_text(info.nodename),
        "domainname": domainname,
    }


@register
class UnameCollector(Collector):
    name = "uname"

    def collect(self) -> Iterable[Metric]:
        family = gauge("node_uname_info", "Kernel identification from uname(2), value always 1.")
        add_sample(family, read_uname(self.paths), 1.0)
        yield family
