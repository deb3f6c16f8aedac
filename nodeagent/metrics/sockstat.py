"""sockstat: socket counts per protocol from <procfs>/net/sockstat and net/sockstat6 (node_sockstat_*).

``mem`` is in pages; like node_exporter we also expose ``<PROTO>_mem_bytes`` = mem x page size.
Either file may be missing (IPv4 or IPv6 disabled); the collector reports no data only when both are.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import gauge, single
from nodeagent.metrics.host.files import read_optional
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# Per-protocol keys node_exporter exposes, in its order; anything else in the file is ignored.
_PROTOCOL_KEYS = ("orphan", "tw", "alloc", "mem", "memory")


@dataclass
class Sockstat:
    used: int | None = None  # the "sockets: used N" line (IPv4 file only)
    protocols: dict[str, dict[str, int]] = field(default_factory=dict)  # "TCP" -> {"inuse": 4, ...}


def parse_sockstat(text: str, source: str = "net/sockstat") -> tuple[Sockstat, list[Skip]]:
    """``TCP: inuse 4 orphan 0 tw 4 alloc 17 mem 1`` lines, and the malformed lines skipped."""
    stat = Sockstat()
    skipped: list[Skip] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        pairs = fields[1:]
        if len(fields) < 3 or len(pairs) % 2 or not fields[0].endswith(":"):
            skipped.append(Skip(f"{source}: malformed line", line))
            continue
        try:
            values = {pairs[i]: parse_int(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        except ValueError:
            skipped.append(Skip(f"{source}: non-numeric value", line))
            continue
        protocol = fields[0][:-1]
        if protocol == "sockets":
            stat.used = values.get("used", 0)
        else:
            stat.protocols[protocol] = values
    return stat, skipped


def sockstat_samples(stat: Sockstat, ipv6: bool, page_size: int = PAGE_SIZE) -> list[tuple[str, str, int]]:
    """(metric suffix, help, value) for one parsed file, as node_exporter names them."""
    samples = []
    if not ipv6 and stat.used is not None:
        samples.append(("sockets_used", "IPv4 sockets in use.", stat.used))
    for protocol, values in stat.protocols.items():
        samples.append((f"{protocol}_inuse", f"{protocol} sockets in use.", values.get("inuse", 0)))
        for key in _PROTOCOL_KEYS:
            if key in values:
                samples.append(
                    (
                        f"{protocol}_{key}",
                        f"{protocol} sockets: {key} as reported by the kernel.",
                        values[key],
                    )
                )
        if "mem" in values:
            samples.append(
                (
                    f"{protocol}_mem_bytes",
                    f"Memory used by {protocol} sockets in bytes.",
                    values["mem"] * page_size,
                )
            )
    return samples


@register
class SockstatCollector(Collector):
    name = "sockstat"

    def collect(self) -> Iterable[Metric]:
        texts = [
            (False, "net/sockstat", read_optional(self.paths.proc("net", "sockstat"))),
            (True, "net/sockstat6", read_optional(self.paths.proc("net", "sockstat6"))),
        ]
        if all(text is None for _, _, text in texts):
            raise NoDataError("neither net/sockstat nor net/sockstat6 exists")
        for ipv6, source, text in texts:
            if text is None:
                continue
            stat, skipped = parse_sockstat(text, source)
            self.report(skipped)
            for suffix, help_text, value in sockstat_samples(stat, ipv6):
                yield single(gauge(f"node_sockstat_{suffix}", help_text), float(value))
