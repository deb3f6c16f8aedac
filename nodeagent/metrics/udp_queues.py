"""udp_queues: bytes queued in UDP sockets, summed from <procfs>/net/udp and net/udp6.

node_udp_queues{ip="v4"|"v6", queue="rx"|"tx"}; the tx_queue:rx_queue column of each socket line is
hexadecimal. A missing file (IPv4 or IPv6 disabled) leaves its samples out.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics._netcommon import report_bad_input
from nodeagent.metrics.registry import Collector, NoDataError, read_optional, register

_MIN_COLUMNS = 10  # sl local rem st tx:rx tr:when retrnsmt uid timeout inode


def parse_udp_queues(text: str, source: str = "net/udp", collector: str = "udp_queues") -> tuple[int, int]:
    """Sum of (tx_queue, rx_queue) over all sockets; the header and malformed lines are skipped."""
    tx_total = rx_total = 0
    for line in text.splitlines()[1:]:
        fields = line.split()
        if not fields:
            continue
        tx, sep, rx = fields[4].partition(":") if len(fields) >= _MIN_COLUMNS else ("", "", "")
        try:
            if not sep:
                raise ValueError("no tx_queue:rx_queue column")
            tx_value, rx_value = int(tx, 16), int(rx, 16)
        except ValueError as exc:
            report_bad_input(collector, f"{source} line: {exc}", line)
            continue
        tx_total += tx_value
        rx_total += rx_value
    return tx_total, rx_total


@register
class UdpQueuesCollector(Collector):
    name = "udp_queues"

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "node_udp_queues",
            "Bytes of UDP datagrams queued in the kernel, summed over all sockets.",
            labels=["ip", "queue"],
        )
        found = False
        for ip, name in (("v4", "udp"), ("v6", "udp6")):
            text = read_optional(self.paths.proc("net", name))
            if text is None:
                continue
            found = True
            tx, rx = parse_udp_queues(text, f"net/{name}")
            family.add_metric([ip, "tx"], float(tx))
            family.add_metric([ip, "rx"], float(rx))
        if not found:
            raise NoDataError("neither net/udp nor net/udp6 exists")
        yield family
