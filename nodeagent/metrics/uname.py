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
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics.registry import Collector, read_text, register

LABELS = ("sysname", "release", "version", "machine", "nodename", "domainname")


def read_uname(procfs: Path) -> dict[str, str]:
    """The six node_uname_info label values."""
    info = os.uname()
    try:
        domainname = read_text(f"{procfs}/sys/kernel/domainname").strip()
    except OSError:
        domainname = "(none)"  # what the kernel reports when none is set
    return {
        "sysname": info.sysname,
        "release": info.release,
        "version": info.version,
        "machine": info.machine,
        "nodename": info.nodename,
        "domainname": domainname,
    }


@register
class UnameCollector(Collector):
    name = "uname"

    def collect(self) -> Iterable[Metric]:
        fields = read_uname(self.paths.procfs)
        family = GaugeMetricFamily(
            "node_uname_info", "Kernel identification from uname(2), value always 1.", labels=list(LABELS)
        )
        family.add_metric([fields[label] for label in LABELS], 1.0)
        yield family
