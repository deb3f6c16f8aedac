"""ipvs: IP Virtual Server (kube-proxy's IPVS mode) totals from <procfs>/net/ip_vs_stats and per-backend
connections and weights from <procfs>/net/ip_vs.

Backends are summed over the label values kept by ``--collector.ipvs.backend-labels`` (a subset of
local_address, local_port, remote_address, remote_port, proto, local_mark), as upstream: with fewer
labels, backends that share the kept values collapse into one sample.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.config import ConfigError, parse_str
from nodeagent.metrics._emit import add_sample, counter, gauge, single
from nodeagent.metrics.host.files import read_lines, read_text
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, Paths, register

BACKEND_LABELS = ("local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark")

_TOTALS = (
    ("node_ipvs_connections_total", "Connections IPVS has scheduled."),
    ("node_ipvs_incoming_packets_total", "Packets IPVS received."),
    ("node_ipvs_outgoing_packets_total", "Packets IPVS sent."),
    ("node_ipvs_incoming_bytes_total", "Bytes IPVS received."),
    ("node_ipvs_outgoing_bytes_total", "Bytes IPVS sent."),
)


class Backend(NamedTuple):
    """One real server line of /proc/net/ip_vs with its virtual service."""

    local_address: str  # "" for a firewall-mark (FWM) service
    local_port: str
    remote_address: str
    remote_port: str
    proto: str
    local_mark: str
    weight: int
    active: int
    inactive: int


def parse_ipvs_stats(text: str) -> tuple[int, int, int, int, int]:
    """The five hexadecimal totals on the third line of ip_vs_stats. Raises ValueError on another shape."""
    lines = text.split("\n", 3)
    if len(lines) != 4:
        raise ValueError("ip_vs_stats too short")
    fields = lines[2].split()
    if len(fields) != 5:
        raise ValueError("ip_vs_stats: not 5 totals on its third line")
    a, b, c, d, e = (parse_uint(field, 16) for field in fields)
    return a, b, c, d, e


def parse_address_port(text: str) -> tuple[str, str]:
    """``C0A80016:0CEA`` (IPv4) or ``[2620:0000:...:0001]:0050`` (IPv6) -> ("192.168.0.22", "3306").
    Raises ValueError."""
    if len(text) == 13:
        address = str(ipaddress.IPv4Address(bytes.fromhex(text[:8])))
    elif len(text) == 46:
        address = str(ipaddress.IPv6Address(text[1:40]))
    else:
        raise ValueError(f"unexpected address:port {text!r}")
    return address, str(parse_uint(text[-4:], 16))


def parse_ipvs_backends(lines: Iterable[str]) -> tuple[list[Backend], list[Skip]]:
    """Every ``->`` line of /proc/net/ip_vs (streamed: a line per backend) with the service above it
    (TCP/UDP address:port or FWM mark).

    Upstream fails the whole scrape on one bad address or number; a bad line is skipped here instead
    (and a bad service line skips its backends), the rest still reported."""
    backends: list[Backend] = []
    skipped: list[Skip] = []
    service: tuple[str, str, str, str] | None = None  # address, port, proto, mark
    for line in lines:
        fields = line.split()
        if not fields or fields[0] in ("IP", "Prot") or fields[1:2] == ["RemoteAddress:Port"]:
            continue
        try:
            if fields[0] in ("TCP", "UDP") and len(fields) >= 2:
                service = None
                address, port = parse_address_port(fields[1])
                service = (address, port, fields[0], "")
            elif fields[0] == "FWM" and len(fields) >= 2:
                service = ("", "0", "FWM", fields[1])
            elif fields[0] == "->" and len(fields) >= 6 and service is not None:
                remote, remote_port = parse_address_port(fields[1])
                weight, active, inactive = (parse_uint(field) for field in fields[3:6])
                address, port, proto, mark = service
                backends.append(
                    Backend(address, port, remote, remote_port, proto, mark, weight, active, inactive)
                )
        except ValueError:
            skipped.append(Skip("net/ip_vs: unparsable line", line))
    return backends, skipped


def backend_labels(raw: Any) -> tuple[str, ...]:
    """``--collector.ipvs.backend-labels``: comma separated, kept in upstream's fixed order; an unknown
    name is an error naming all unknown ones, sorted. Raises ValueError."""
    wanted = {name for name in parse_str(raw).split(",") if name}
    unknown = sorted(wanted - set(BACKEND_LABELS))
    if unknown:
        raise ValueError(f'unknown IPVS backend labels: "{", ".join(unknown)}"')
    return tuple(name for name in BACKEND_LABELS if name in wanted)


def parse_backend_labels(raw: Any) -> str:
    """The option's value parser: checked at startup (a bad name is a configuration error), kept as text."""
    backend_labels(raw)
    return parse_str(raw)


def sum_backends(backends: Iterable[Backend], labels: tuple[str, ...]) -> dict[tuple[str, ...], list[int]]:
    """Kept label values -> [active, inactive, weight] summed over the backends sharing them."""
    sums: dict[tuple[str, ...], list[int]] = {}
    for backend in backends:
        key = tuple(getattr(backend, label) for label in labels)
        total = sums.setdefault(key, [0, 0, 0])
        total[0] += backend.active
        total[1] += backend.inactive
        total[2] += backend.weight
    return sums


@register
class IpvsCollector(Collector):
    name = "ipvs"
    options = (
        CollectorOption(
            "backend-labels",
            ",".join(BACKEND_LABELS),
            "Comma separated labels of the IPVS backend samples (a subset of "
            + ", ".join(BACKEND_LABELS)
            + ").",
            parse_backend_labels,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        try:
            self.labels = backend_labels(self.opts["backend-labels"])
        except ValueError as exc:
            raise ConfigError(str(exc), key="collector.ipvs.backend-labels") from None

    def collect(self) -> Iterable[Metric]:
        try:
            stats_text = read_text(self.paths.proc("net", "ip_vs_stats"))
        except FileNotFoundError as exc:
            raise NoDataError("no IPVS on this host") from exc
        totals = parse_ipvs_stats(stats_text)
        for (name, help_text), value in zip(_TOTALS, totals, strict=True):
            yield single(counter(name, help_text), float(value))
        backends, skipped = parse_ipvs_backends(read_lines(self.paths.proc("net", "ip_vs")))
        self.report(skipped)
        active = gauge("node_ipvs_backend_connections_active", "Active connections per backend.")
        inactive = gauge("node_ipvs_backend_connections_inactive", "Inactive connections per backend.")
        weight = gauge("node_ipvs_backend_weight", "Scheduling weight per backend.")
        for key, (n_active, n_inactive, n_weight) in sum_backends(backends, self.labels).items():
            labels = dict(zip(self.labels, key, strict=True))
            add_sample(active, labels, float(n_active))
            add_sample(inactive, labels, float(n_inactive))
            add_sample(weight, labels, float(n_weight))
        yield active
        yield inactive
        yield weight
