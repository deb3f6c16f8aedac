"""qdisc: statistics of each interface's root queueing discipline, read over rtnetlink (RTM_GETQDISC).

As upstream (its ``ema/qdisc`` reader): only root qdiscs (parent TC_H_ROOT) are exported; counters come
from TCA_STATS2 (basic + queue) and then the legacy TCA_STATS, the later attribute overriding what both
carry; interface names are resolved by index from a link dump. ``--collector.qdisc.fixtures=DIR`` reads
``DIR/results.json`` instead (upstream's own end-to-end test input: a JSON list of those records).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_regex, parse_str
from nodeagent.metrics import _netlink
from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics._filters import exclusive_filter
from nodeagent.metrics.host import gojson
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.registry import Collector, CollectorOption, Paths, register

RTM_NEWQDISC = 36
RTM_GETQDISC = 38
TCA_KIND = 1
TCA_STATS = 3
TCA_STATS2 = 7
TCA_STATS_BASIC = 1
TCA_STATS_QUEUE = 3
TC_H_ROOT = 0xFFFFFFFF

_TCMSG = struct.Struct("=BBHIIII")  # family, pad, pad, ifindex, handle, parent, info
_TC_STATS = struct.Struct("=QIIIIIII")  # bytes, packets, drops, overlimits, bps, pps, qlen, backlog
_BASIC = struct.Struct("=QI")  # gnet_stats_basic: bytes, packets
_QUEUE = struct.Struct("=IIIII")  # gnet_stats_queue: qlen, backlog, drops, requeues, overlimits


@dataclass
class Qdisc:
    """One qdisc record, the fields upstream exports (names as its JSON fixture spells them)."""

    iface_name: str = ""
    parent: int = 0
    kind: str = ""
    bytes: int = 0
    packets: int = 0
    drops: int = 0
    requeues: int = 0
    overlimits: int = 0
    qlen: int = 0
    backlog: int = 0


_JSON_FIELDS = {
    "ifacename": "iface_name",
    "parent": "parent",
    "kind": "kind",
    "bytes": "bytes",
    "packets": "packets",
    "drops": "drops",
    "requeues": "requeues",
    "overlimits": "overlimits",
    "qlen": "qlen",
    "backlog": "backlog",
}


def parse_qdisc_fixture(text: str) -> list[Qdisc]:
    """upstream's results.json: a JSON list of records (Go's encoding/json rules). Raises ValueError."""
    return gojson.decode_list(text, Qdisc, _JSON_FIELDS, "qdisc fixture")


def parse_qdisc_message(body: bytes, names: dict[int, str]) -> Qdisc | None:
    """One RTM_NEWQDISC body -> Qdisc (parent TC_H_ROOT as 0, as upstream), None when too short."""
    if len(body) < _TCMSG.size:
        return None
    _family, _pad1, _pad2, ifindex, _handle, parent, _info = _TCMSG.unpack_from(body)
    qdisc = Qdisc(iface_name=names.get(ifindex, ""), parent=0 if parent == TC_H_ROOT else parent)
    for attr_type, payload in _netlink.attributes(body, _TCMSG.size):
        if attr_type == TCA_KIND:
            qdisc.kind = _netlink.c_string(payload)
        elif attr_type == TCA_STATS2:
            for nested_type, nested in _netlink.attributes(payload):
                if nested_type == TCA_STATS_BASIC and len(nested) >= _BASIC.size:
                    qdisc.bytes, qdisc.packets = _BASIC.unpack_from(nested)
                elif nested_type == TCA_STATS_QUEUE and len(nested) >= _QUEUE.size:
                    qdisc.qlen, qdisc.backlog, qdisc.drops, qdisc.requeues, qdisc.overlimits = (
                        _QUEUE.unpack_from(nested)
                    )
        elif attr_type == TCA_STATS and len(payload) >= _TC_STATS.size:
            values = _TC_STATS.unpack_from(payload)
            qdisc.bytes, qdisc.packets, qdisc.drops, qdisc.overlimits = values[:4]
            qdisc.qlen, qdisc.backlog = values[6:8]
    return qdisc


def dump_qdiscs(timeout: float = 5.0) -> list[Qdisc]:
    """Every qdisc of the current network namespace."""
    names = _netlink.link_names(timeout)
    bodies = _netlink.dump(_netlink.NETLINK_ROUTE, RTM_GETQDISC, bytes(_TCMSG.size), RTM_NEWQDISC, timeout)
    return [qdisc for body in bodies if (qdisc := parse_qdisc_message(body, names)) is not None]


_FAMILIES = (
    ("node_qdisc_bytes_total", "bytes", True, "Bytes sent by the qdisc."),
    ("node_qdisc_packets_total", "packets", True, "Packets sent by the qdisc."),
    ("node_qdisc_drops_total", "drops", True, "Packets the qdisc dropped."),
    ("node_qdisc_requeues_total", "requeues", True, "Packets dequeued, not sent, and queued again."),
    ("node_qdisc_overlimits_total", "overlimits", True, "Packets over the qdisc's limits."),
    ("node_qdisc_current_queue_length", "qlen", False, "Packets in the queue now."),
    ("node_qdisc_backlog", "backlog", False, "Bytes in the queue now."),
)


@register
class QdiscCollector(Collector):
    name = "qdisc"
    default_enabled = False
    options = (
        CollectorOption(
            "fixtures", "", "Directory with a results.json to read instead of netlink (for tests).", parse_str
        ),
        CollectorOption(
            "device-include",
            "",
            "Regexp of devices to export (mutually exclusive with device-exclude).",
            parse_regex,
        ),
        CollectorOption(
            "device-exclude",
            "",
            "Regexp of devices to leave out (mutually exclusive with device-include).",
            parse_regex,
        ),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self.filter = exclusive_filter(self.name, self.opts, "device")
        self.fixtures = self.opts["fixtures"]

    def collect(self) -> Iterable[Metric]:
        if self.fixtures:
            qdiscs = parse_qdisc_fixture(read_text(re.sub(r"/*$", "", self.fixtures) + "/results.json"))
        else:
            qdiscs = dump_qdiscs()
        families = [
            ((counter if is_counter else gauge)(name, help_text), field)
            for name, field, is_counter, help_text in _FAMILIES
        ]
        for qdisc in qdiscs:
            if qdisc.parent != 0 or self.filter.ignored(qdisc.iface_name):
                continue
            labels = {"device": qdisc.iface_name, "kind": qdisc.kind}
            for family, field in families:
                add_sample(family, labels, float(getattr(qdisc, field)))
        for family, _field in families:
            yield family
