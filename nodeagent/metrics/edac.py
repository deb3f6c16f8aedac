"""edac: memory error (ECC) counters from <sysfs>/devices/system/edac/mc/mc*/.

Per controller: correctable/uncorrectable totals, per csrow (``csrow="unknown"`` for errors the
controller could not attribute to a row), and per csrow channel with the DIMM label.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter
from nodeagent.metrics.host.files import list_dir, read_attribute, read_uint
from nodeagent.metrics.host.sysfs import numbered_entries
from nodeagent.metrics.registry import Collector, NoDataError, register

_CHANNEL_CE_FILE = re.compile(r"^ch([0-9]+)_ce_count$")


def read_count(path: str) -> float:
    return float(read_uint(path))


def dimm_label(csrow: str, channel: str) -> str:
    """The channel's DIMM label as node_exporter rewrites it ('#' dropped, '_' before csrow/channel)."""
    try:
        label = read_attribute(f"{csrow}/ch{channel}_dimm_label")
    except OSError:
        return "unknown"
    return label.replace("#", "").replace("csrow", "_csrow").replace("channel", "_channel")


class EdacFamilies:
    def __init__(self) -> None:
        self.ce = counter(
            "node_edac_correctable_errors_total", "Correctable memory errors of the memory controller."
        )
        self.ue = counter(
            "node_edac_uncorrectable_errors_total", "Uncorrectable memory errors of the memory controller."
        )
        self.csrow_ce = counter(
            "node_edac_csrow_correctable_errors_total", "Correctable memory errors of the chip-select row."
        )
        self.csrow_ue = counter(
            "node_edac_csrow_uncorrectable_errors_total",
            "Uncorrectable memory errors of the chip-select row.",
        )
        self.channel_ce = counter(
            "node_edac_channel_correctable_errors_total", "Correctable memory errors of the channel."
        )
        self.channel_ue = counter(
            "node_edac_channel_uncorrectable_errors_total", "Uncorrectable memory errors of the channel."
        )

    def all(self) -> list[Metric]:
        return [self.ce, self.ue, self.csrow_ce, self.csrow_ue, self.channel_ce, self.channel_ue]


def collect_controller(controller: str, path: str, out: EdacFamilies) -> None:
    """Add one controller's counters; a missing controller or csrow counter raises OSError."""
    labels = {"controller": controller}
    add_sample(out.ce, labels, read_count(f"{path}/ce_count"))
    unknown = {"controller": controller, "csrow": "unknown"}
    add_sample(out.csrow_ce, unknown, read_count(f"{path}/ce_noinfo_count"))
    add_sample(out.ue, labels, read_count(f"{path}/ue_count"))
    add_sample(out.csrow_ue, unknown, read_count(f"{path}/ue_noinfo_count"))
    for csrow, csrow_path in numbered_entries(path, "csrow"):
        row_labels = {"controller": controller, "csrow": csrow}
        add_sample(out.csrow_ce, row_labels, read_count(f"{csrow_path}/ce_count"))
        add_sample(out.csrow_ue, row_labels, read_count(f"{csrow_path}/ue_count"))
        channels = sorted(m.group(1) for m in map(_CHANNEL_CE_FILE.match, list_dir(csrow_path)) if m)
        for channel in channels:
            channel_labels = {**row_labels, "channel": channel, "dimm_label": dimm_label(csrow_path, channel)}
            add_sample(out.channel_ce, channel_labels, read_count(f"{csrow_path}/ch{channel}_ce_count"))
            with contextlib.suppress(OSError, ValueError):  # not every driver counts them per channel
                add_sample(out.channel_ue, channel_labels, read_count(f"{csrow_path}/ch{channel}_ue_count"))


@register
class EdacCollector(Collector):
    name = "edac"

    def collect(self) -> Iterable[Metric]:
        try:
            controllers = numbered_entries(self.paths.sys("devices", "system", "edac", "mc"), "mc")
        except FileNotFoundError:
            raise NoDataError("no EDAC memory controllers") from None
        out = EdacFamilies()
        for controller, path in controllers:
            try:
                collect_controller(controller, path, out)
            except (OSError, ValueError) as exc:
                self.skip("EDAC controller with a missing or unparsable counter", exc)
        return out.all()
