"""udp_queues: bytes queued in UDP sockets, summed from <procfs>/net/udp and net/udp6.

node_udp_queues{ip="v4"|"v6", queue="rx"|"tx"}; the tx_queue:rx_queue column of each socket line is
hexadecimal. A missing file (IPv4 or IPv6 disabled) leaves its samples out.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import read_lines
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

_MIN_COLUMNS = 10  # sl local rem st tx:rx tr:when retrnsmt uid timeout inode


def parse_udp_queues(lines: Iterable[str], source: str = "net/udp") -> tuple[tuple[int, int], list[Skip]]:
    """Sum of (tx_queue, rx_queue) over all sockets, and the malformed lines skipped (the first line is
    the header). ``lines``: a file's lines, read as they come (one per socket)."""
    tx_total = rx_total = 0
    skipped: list[Skip] = []
    for index, line in enumerate(lines):
        fields = line.split()
        if index == 0:
            continue
        if not fields:
            continue
        tx, sep, rx = fields[4].partition(":") if len(fields) >= _MIN_COLUMNS else ("", "", "")
        try:
            if not sep:
                raise ValueError("no tx_queue:rx_queue column")
            tx_value, rx_value = parse_uint(tx, 16), parse_uint(rx, 16)
        except ValueError:
            skipped.append(Skip(f"{source} line without a tx_queue:rx_queue column", line))
            continue
        tx_total += tx_value
        rx_total += rx_value
    return (tx_total, rx_total), skipped


@register
class UdpQueuesCollector(Collector):
    name = "udp_queues"

    def collect(self) -> Iterable[Metric]:
        family = gauge(
            "node_udp_queues", "Bytes of UDP datagrams queued in the kernel, summed over all sockets."
        )
        found = False
        for ip, name in (("v4", "udp"), ("v6", "udp6")):
            try:
                (tx, rx), skipped = parse_udp_queues(read_lines(self.paths.proc("net", name)), f"net/{name}")
            except FileNotFoundError:
                continue
            found = True
            self.report(skipped)
            add_sample(family, {"ip": ip, "queue": "tx"}, float(tx))
            add_sample(family, {"ip": ip, "queue": "rx"}, float(rx))
        if not found:
            raise NoDataError("neither net/udp nor net/udp6 exists")
        yield family
