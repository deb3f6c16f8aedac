"""netstat: protocol counters from <procfs>/net/netstat, net/snmp and net/snmp6 (node_netstat_*).

Each selected ``Protocol_Field`` becomes one untyped sample ``node_netstat_<Protocol>_<Field>``, the
selection being the ``fields`` regexp (node_exporter's default kept). net/snmp6 is optional: it is
absent when IPv6 is disabled.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_regex
from nodeagent.metrics._emit import single, untyped
from nodeagent.metrics.host.files import read_optional, read_text
from nodeagent.metrics.host.gonum import parse_float
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, Paths, register

DEFAULT_FIELDS = (
    r"^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)"
    r"|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)"
    r"|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)"
    r"|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$"
)


def parse_netstat(text: str, source: str = "net/netstat") -> tuple[dict[str, dict[str, str]], list[Skip]]:
    """``Proto: Name1 Name2`` / ``Proto: v1 v2`` line pairs -> protocol -> {name: raw value}.

    A pair whose prefixes or lengths differ is skipped; parsing resynchronises on the next line.
    """
    stats: dict[str, dict[str, str]] = {}
    skipped: list[Skip] = []
    lines = [line for line in text.splitlines() if line.strip()]
    index = 0
    while index < len(lines):
        names = lines[index].split()
        if index + 1 >= len(lines):
            skipped.append(Skip(f"{source}: header without a value line", names[0]))
            break
        values = lines[index + 1].split()
        if names[0] != values[0] or not names[0].endswith(":"):
            skipped.append(Skip(f"{source}: header/value prefix mismatch", (names[0], values[0])))
            index += 1
            continue
        index += 2
        if len(names) != len(values):
            skipped.append(Skip(f"{source}: {names[0]} field count mismatch", len(values)))
            continue
        stats[names[0][:-1]] = dict(zip(names[1:], values[1:], strict=True))
    return stats, skipped


def parse_snmp6(text: str) -> dict[str, dict[str, str]]:
    """``Ip6InReceives 7`` lines -> {"Ip6": {"InReceives": "7"}}; the protocol ends at the first "6"."""
    stats: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 2:
            continue
        key = fields[0]
        six = key.find("6")
        if six == -1:
            continue
        stats.setdefault(key[: six + 1], {})[key[six + 1 :]] = fields[1]
    return stats


def read_netstat(paths: Paths) -> tuple[dict[str, dict[str, str]], list[Skip]]:
    """All three files merged; a protocol found in a later file replaces the earlier one (as upstream)."""
    stats, skipped = parse_netstat(read_text(paths.proc("net", "netstat")), "net/netstat")
    snmp, more = parse_netstat(read_text(paths.proc("net", "snmp")), "net/snmp")
    stats.update(snmp)
    snmp6 = read_optional(paths.proc("net", "snmp6"))  # absent when IPv6 is disabled
    if snmp6 is not None:
        stats.update(parse_snmp6(snmp6))
    return stats, skipped + more


@register
class NetstatCollector(Collector):
    name = "netstat"
    options = (
        CollectorOption("fields", DEFAULT_FIELDS, "Regexp of Protocol_Field names to expose.", parse_regex),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.fields = re.compile(self.opts["fields"], re.ASCII)
        # (protocol, its field names) -> the selected (field, Protocol_Field) pairs: the field names only
        # change with the kernel, so the regexp runs once per field instead of on every scrape.
        self._selected: dict[tuple[str, tuple[str, ...]], tuple[tuple[str, str], ...]] = {}

    def _selected_fields(self, protocol: str, fields: dict[str, str]) -> tuple[tuple[str, str], ...]:
        cache_key = (protocol, tuple(fields))
        selected = self._selected.get(cache_key)
        if selected is None:
            keys = ((field, f"{protocol}_{field}") for field in fields)
            selected = self._selected[cache_key] = tuple(
                (field, key) for field, key in keys if self.fields.search(key)
            )
        return selected

    def collect(self) -> Iterable[Metric]:
        stats, skipped = read_netstat(self.paths)
        self.report(skipped)
        for protocol, fields in stats.items():
            for field, key in self._selected_fields(protocol, fields):
                raw = fields[field]
                try:
                    value = parse_float(raw)
                except ValueError:
                    self.skip(f"{key}: not a number", raw)
                    continue
                yield single(untyped(f"node_netstat_{key}", f"{protocol} counter {field}."), value)
