"""fibrechannel: Fibre Channel host adapters from <sysfs>/class/fc_host/<host>/.

Per host: ``node_fibrechannel_info`` (speed, port state/type/id/name, fabric, symbolic name, supported
classes and speeds, dev_loss_tmo; ``0x`` stripped from the IDs and names) and the error and traffic
counters of ``statistics/``. A counter reading all ones is one the adapter's firmware does not
implement and is left out; a port in state ``Unknown`` (or without a state) reports every counter as 0,
as node_exporter. A counter that does not parse is left out and reported. No fc_host class: no data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.host.files import read_attribute_or_none, read_attributes
from nodeagent.metrics.host.gonum import MAX_UINT64, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import class_devices
from nodeagent.metrics.registry import Collector, NoDataError, register

_ATTRIBUTES = (
    "speed",
    "port_state",
    "port_type",
    "node_name",
    "port_id",
    "port_name",
    "fabric_name",
    "dev_loss_tmo",
    "symbolic_name",
    "supported_classes",
    "supported_speeds",
)
_HEX_PREFIXED = frozenset({"node_name", "port_id", "port_name", "fabric_name"})
# info label -> attribute, in node_exporter's label order
INFO_LABELS = (
    "speed",
    "port_state",
    "port_type",
    "port_id",
    "port_name",
    "fabric_name",
    "symbolic_name",
    "supported_classes",
    "supported_speeds",
    "dev_loss_tmo",
)
# statistics file -> metric suffix
COUNTERS = {
    "dumped_frames": "dumped_frames_total",
    "error_frames": "error_frames_total",
    "invalid_crc_count": "invalid_crc_total",
    "rx_frames": "rx_frames_total",
    "rx_words": "rx_words_total",
    "tx_frames": "tx_frames_total",
    "tx_words": "tx_words_total",
    "seconds_since_last_reset": "seconds_since_last_reset_total",
    "invalid_tx_word_count": "invalid_tx_words_total",
    "link_failure_count": "link_failure_total",
    "loss_of_sync_count": "loss_of_sync_total",
    "loss_of_signal_count": "loss_of_signal_total",
    "nos_count": "nos_total",
    "fcp_packet_aborts": "fcp_packet_aborts_total",
}


def read_host(directory: str) -> tuple[dict[str, str], dict[str, int], list[Skip]]:
    """(attributes, counters by statistics file name, skipped) of one fc_host directory."""
    attributes = read_attributes(directory, _ATTRIBUTES)
    for name in _HEX_PREFIXED & attributes.keys():
        if len(attributes[name]) > 2:
            attributes[name] = attributes[name][2:]
    counters: dict[str, int] = {}
    skipped: list[Skip] = []
    statistics = f"{directory}/statistics"
    try:
        with os.scandir(statistics) as entries:
            names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        names = []
    for name in names:
        if name not in COUNTERS:
            continue
        text = read_attribute_or_none(f"{statistics}/{name}")
        if text is None:
            continue
        try:
            counters[name] = parse_uint(text, 0)  # the kernel prints these in hexadecimal
        except ValueError:
            skipped.append(Skip("fc_host statistics: unparsable counter", f"{name}: {text}"))
    return attributes, counters, skipped


@register
class FibrechannelCollector(Collector):
    name = "fibrechannel"

    def collect(self) -> Iterable[Metric]:
        try:
            hosts = class_devices(self.paths, "fc_host")
        except (FileNotFoundError, NotADirectoryError):
            raise NoDataError("no fc_host class") from None
        info = gauge("node_fibrechannel_info", "Fibre Channel host attributes; always 1.")
        families = {
            suffix: counter(f"node_fibrechannel_{suffix}", f"Fibre Channel host statistic {name}.")
            for name, suffix in COUNTERS.items()
        }
        for host, directory in hosts:
            attributes, counters, skipped = read_host(directory)
            self.report(skipped)
            add_sample(info, {"fc_host": host, **{key: attributes.get(key, "") for key in INFO_LABELS}}, 1.0)
            state = attributes.get("port_state")
            labels = {"fc_host": host}
            for name, suffix in COUNTERS.items():
                value = 0 if state is None or state == "Unknown" else counters.get(name)
                if value is not None and value != MAX_UINT64:  # all ones: not implemented by the firmware
                    add_sample(families[suffix], labels, float(value))
        return [info, *families.values()]
