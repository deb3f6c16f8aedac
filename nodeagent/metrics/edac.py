"""edac: memory error (ECC) counters from <sysfs>/devices/system/edac/mc/mc*/.

Per controller: correctable/uncorrectable totals, per csrow (``csrow="unknown"`` for errors the
controller could not attribute to a row), and per csrow channel with the DIMM label.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable

from prometheus_client.metrics_core import CounterMetricFamily, Metric

from nodeagent.metrics._sysfs_attrs import go_parse_uint, numbered_entries, read_attr
from nodeagent.metrics.registry import Collector, NoDataError, register

log = logging.getLogger("nodeagent.metrics.edac")

_CHANNEL_CE_FILE = re.compile(r"^ch([0-9]+)_ce_count$")


def read_count(path: str) -> float:
    return float(go_parse_uint(read_attr(path)))


def dimm_label(csrow: str, channel: str) -> str:
    """The channel's DIMM label as node_exporter rewrites it ('#' dropped, '_' before csrow/channel)."""
    try:
        label = read_attr(f"{csrow}/ch{channel}_dimm_label")
    except OSError:
        return "unknown"
    return label.replace("#", "").replace("csrow", "_csrow").replace("channel", "_channel")


class EdacFamilies:
    def __init__(self) -> None:
        self.ce = CounterMetricFamily(
            "node_edac_correctable_errors_total",
            "Correctable memory errors of the memory controller.",
            labels=["controller"],
        )
        self.ue = CounterMetricFamily(
            "node_edac_uncorrectable_errors_total",
            "Uncorrectable memory errors of the memory controller.",
            labels=["controller"],
        )
        self.csrow_ce = CounterMetricFamily(
            "node_edac_csrow_correctable_errors_total",
            "Correctable memory errors of the chip-select row.",
            labels=["controller", "csrow"],
        )
        self.csrow_ue = CounterMetricFamily(
            "node_edac_csrow_uncorrectable_errors_total",
            "Uncorrectable memory errors of the chip-select row.",
            labels=["controller", "csrow"],
        )
        channel_labels = ["controller", "csrow", "channel", "dimm_label"]
        self.channel_ce = CounterMetricFamily(
            "node_edac_channel_correctable_errors_total",
            "Correctable memory errors of the channel.",
            labels=channel_labels,
        )
        self.channel_ue = CounterMetricFamily(
            "node_edac_channel_uncorrectable_errors_total",
            "Uncorrectable memory errors of the channel.",
            labels=channel_labels,
        )

    def all(self) -> list[Metric]:
        return [self.ce, self.ue, self.csrow_ce, self.csrow_ue, self.channel_ce, self.channel_ue]


def collect_controller(controller: str, path: str, out: EdacFamilies) -> None:
    """Add one controller's counters; a missing controller or csrow counter raises OSError."""
    out.ce.add_metric([controller], read_count(f"{path}/ce_count"))
    out.csrow_ce.add_metric([controller, "unknown"], read_count(f"{path}/ce_noinfo_count"))
    out.ue.add_metric([controller], read_count(f"{path}/ue_count"))
    out.csrow_ue.add_metric([controller, "unknown"], read_count(f"{path}/ue_noinfo_count"))
    for csrow, csrow_path in numbered_entries(path, "csrow"):
        out.csrow_ce.add_metric([controller, csrow], read_count(f"{csrow_path}/ce_count"))
        out.csrow_ue.add_metric([controller, csrow], read_count(f"{csrow_path}/ue_count"))
        channels = sorted(m.group(1) for m in map(_CHANNEL_CE_FILE.match, os.listdir(csrow_path)) if m)
        for channel in channels:
            labels = [controller, csrow, channel, dimm_label(csrow_path, channel)]
            out.channel_ce.add_metric(labels, read_count(f"{csrow_path}/ch{channel}_ce_count"))
            with contextlib.suppress(OSError, ValueError):  # not every driver counts them per channel
                out.channel_ue.add_metric(labels, read_count(f"{csrow_path}/ch{channel}_ue_count"))


@register
class EdacCollector(Collector):
    name = "edac"

    def collect(self) -> Iterable[Metric]:
        root = self.paths.sysfs / "devices" / "system" / "edac" / "mc"
        try:
            controllers = numbered_entries(root, "mc")
        except FileNotFoundError:
            raise NoDataError("no EDAC memory controllers") from None
        out = EdacFamilies()
        for controller, path in controllers:
            try:
                collect_controller(controller, path, out)
            except (OSError, ValueError) as exc:
                log.warning("cannot read EDAC controller", extra={"controller": controller, "err": str(exc)})
        return out.all()
