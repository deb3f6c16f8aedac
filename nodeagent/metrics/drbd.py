"""drbd: DRBD 8 device statistics from <procfs>/drbd (off by default).

The file is read as whitespace-separated ``key:value`` words: ``<N>:`` starts device ``drbd<N>``, then
counters (``ns:``, ``dw:``, ... some in KiB, exported in bytes), role and disk-state pairs (``ro:``,
``ds:`` as local/remote) and the connection state (``cs:``). Words of another shape are ignored; a
counter or pair that does not parse is skipped and reported. No file: DRBD is not loaded.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_float, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

# key -> (metric suffix, counter?, multiplier, help)
NUMERIC = {
    "ns": ("network_sent_bytes_total", True, 1024, "Bytes sent to the peer."),
    "nr": ("network_received_bytes_total", True, 1, "Bytes received from the peer."),
    "dw": ("disk_written_bytes_total", True, 1024, "Bytes written to the local disk."),
    "dr": ("disk_read_bytes_total", True, 1024, "Bytes read from the local disk."),
    "al": ("activitylog_writes_total", True, 1, "Updates of the metadata activity log."),
    "bm": ("bitmap_writes_total", True, 1, "Updates of the metadata bitmap."),
    "lo": ("local_pending", False, 1, "Open requests to the local disk."),
    "pe": ("remote_pending", False, 1, "Requests sent to the peer and not answered yet."),
    "ua": ("remote_unacknowledged", False, 1, "Requests received from the peer and not answered yet."),
    "ap": ("application_pending", False, 1, "Block I/O requests given to DRBD and not answered yet."),
    "ep": ("epochs", False, 1, "Epochs in flight."),
    "oos": ("out_of_sync_bytes", False, 1024, "Data known to be out of sync, in bytes."),
}
# key -> (metric suffix, the healthy value, help)
PAIRS = {
    "ro": ("node_role_is_primary", "Primary", "1 if the node's role is Primary."),
    "ds": ("disk_state_is_up_to_date", "UpToDate", "1 if the node's disk is UpToDate."),
}


def parse_drbd(text: str) -> tuple[list[tuple[str, str, dict[str, str], float]], list[Skip]]:
    """(metric suffix, device, extra labels, value) in file order, and the words skipped."""
    samples: list[tuple[str, str, dict[str, str], float]] = []
    skipped: list[Skip] = []
    device = "unknown"
    for word in text.split():
        parts = word.split(":")
        if len(parts) != 2:
            continue
        key, value = parts
        if value == "":
            try:
                device = f"drbd{parse_uint(key)}"
                continue
            except ValueError:
                pass
        if key in NUMERIC:
            suffix, _, multiplier, _ = NUMERIC[key]
            try:
                samples.append((suffix, device, {}, parse_float(value) * multiplier))
            except ValueError:
                skipped.append(Skip("drbd: unparsable counter", word))
        elif key in PAIRS:
            suffix, healthy, _ = PAIRS[key]
            states = value.split("/")
            if len(states) < 2:
                skipped.append(Skip("drbd: state without local/remote pair", word))
                continue
            samples.append((suffix, device, {"node": "local"}, 1.0 if states[0] == healthy else 0.0))
            samples.append((suffix, device, {"node": "remote"}, 1.0 if states[1] == healthy else 0.0))
        elif key == "cs":
            samples.append(("connected", device, {}, 1.0 if value == "Connected" else 0.0))
    return samples, skipped


@register
class DrbdCollector(Collector):
    name = "drbd"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        try:
            text = read_text(self.paths.proc("drbd"))
        except FileNotFoundError:
            raise NoDataError("no <procfs>/drbd (DRBD not loaded)") from None
        samples, skipped = parse_drbd(text)
        self.report(skipped)
        families: dict[str, Metric] = {}
        for suffix, is_counter, _, doc in NUMERIC.values():
            families[suffix] = (counter if is_counter else gauge)(f"node_drbd_{suffix}", doc)
        for suffix, _, doc in PAIRS.values():
            families[suffix] = gauge(f"node_drbd_{suffix}", doc)
        families["connected"] = gauge("node_drbd_connected", "1 if DRBD is connected to the peer.")
        for suffix, device, extra, value in samples:
            add_sample(families[suffix], {"device": device, **extra}, value)
        return list(families.values())
