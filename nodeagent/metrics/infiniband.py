"""infiniband: InfiniBand / RDMA devices and their port counters from <sysfs>/class/infiniband/.

Per device ``node_infiniband_info``; per port its state, physical state, rate, the ``counters/`` and
``counters_ext/`` (pre-4.5 64-bit) PMA counters and the ``hw_counters/`` (mlx5/RoCE) counters, each
exported only when its file exists, as upstream. Data counters count 32-bit words per lane: they are
multiplied by 4 into bytes, as upstream does.

Upstream fails the whole scrape on one unreadable port or unparsable counter; here that port or
counter is skipped and reported, the rest exported. ``N/A (no PMA)`` counters are left out silently.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.config import parse_regex
from nodeagent.metrics._emit import add_sample, counter, gauge
from nodeagent.metrics._filters import NameFilter
from nodeagent.metrics.host.files import (
    list_dir,
    list_files,
    read_attributes,
    valid_text,
)
from nodeagent.metrics.host.gonum import parse_float, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, CollectorOption, NoDataError, Paths, register

# (directory, file, metric name without node_infiniband_, help, multiplier)
_COUNTERS = (
    (
        "counters_ext",
        "port_multicast_rcv_packets",
        "legacy_multicast_packets_received_total",
        "Multicast packets received (counters_ext).",
        1,
    ),
    (
        "counters_ext",
        "port_multicast_xmit_packets",
        "legacy_multicast_packets_transmitted_total",
        "Multicast packets sent (counters_ext).",
        1,
    ),
    (
        "counters_ext",
        "port_rcv_data_64",
        "legacy_data_received_bytes_total",
        "Data bytes received on all lanes (counters_ext).",
        4,
    ),
    (
        "counters_ext",
        "port_rcv_packets_64",
        "legacy_packets_received_total",
        "Packets received (counters_ext).",
        1,
    ),
    (
        "counters_ext",
        "port_unicast_rcv_packets",
        "legacy_unicast_packets_received_total",
        "Unicast packets received (counters_ext).",
        1,
    ),
    (
        "counters_ext",
        "port_unicast_xmit_packets",
        "legacy_unicast_packets_transmitted_total",
        "Unicast packets sent (counters_ext).",
        1,
    ),
    (
        "counters_ext",
        "port_xmit_data_64",
        "legacy_data_transmitted_bytes_total",
        "Data bytes sent on all lanes (counters_ext).",
        4,
    ),
    (
        "counters_ext",
        "port_xmit_packets_64",
        "legacy_packets_transmitted_total",
        "Packets sent (counters_ext).",
        1,
    ),
    (
        "counters",
        "excessive_buffer_overrun_errors",
        "excessive_buffer_overrun_errors_total",
        "Runs of flow-control periods each with a buffer overrun.",
        1,
    ),
    (
        "counters",
        "link_downed",
        "link_downed_total",
        "Times the link failed to recover from an error and went down.",
        1,
    ),
    (
        "counters",
        "link_error_recovery",
        "link_error_recovery_total",
        "Times the link recovered from an error state.",
        1,
    ),
    (
        "counters",
        "local_link_integrity_errors",
        "local_link_integrity_errors_total",
        "Times local physical errors exceeded their threshold.",
        1,
    ),
    (
        "counters",
        "multicast_rcv_packets",
        "multicast_packets_received_total",
        "Multicast packets received, errors included.",
        1,
    ),
    (
        "counters",
        "multicast_xmit_packets",
        "multicast_packets_transmitted_total",
        "Multicast packets sent, errors included.",
        1,
    ),
    (
        "counters",
        "port_rcv_constraint_errors",
        "port_constraint_errors_received_total",
        "Received packets discarded by switch port constraints.",
        1,
    ),
    (
        "counters",
        "port_xmit_constraint_errors",
        "port_constraint_errors_transmitted_total",
        "Packets not sent because of switch port constraints.",
        1,
    ),
    ("counters", "port_rcv_data", "port_data_received_bytes_total", "Data bytes received on all lanes.", 4),
    ("counters", "port_xmit_data", "port_data_transmitted_bytes_total", "Data bytes sent on all lanes.", 4),
    (
        "counters",
        "port_rcv_discards",
        "port_discards_received_total",
        "Inbound packets discarded (port down or congested).",
        1,
    ),
    (
        "counters",
        "port_xmit_discards",
        "port_discards_transmitted_total",
        "Outbound packets discarded (port down or congested).",
        1,
    ),
    (
        "counters",
        "port_rcv_errors",
        "port_errors_received_total",
        "Packets with an error received on the port.",
        1,
    ),
    (
        "counters",
        "port_rcv_packets",
        "port_packets_received_total",
        "Packets received on all VLs, errors included.",
        1,
    ),
    (
        "counters",
        "port_xmit_packets",
        "port_packets_transmitted_total",
        "Packets sent on all VLs, errors included.",
        1,
    ),
    (
        "counters",
        "port_xmit_wait",
        "port_transmit_wait_total",
        "Ticks with data to send but nothing sent.",
        1,
    ),
    (
        "counters",
        "unicast_rcv_packets",
        "unicast_packets_received_total",
        "Unicast packets received, errors included.",
        1,
    ),
    (
        "counters",
        "unicast_xmit_packets",
        "unicast_packets_transmitted_total",
        "Unicast packets sent, errors included.",
        1,
    ),
    (
        "counters",
        "port_rcv_remote_physical_errors",
        "port_receive_remote_physical_errors_total",
        "Packets received marked with the EBP delimiter.",
        1,
    ),
    (
        "counters",
        "port_rcv_switch_relay_errors",
        "port_receive_switch_relay_errors_total",
        "Packets the switch could not forward.",
        1,
    ),
    ("counters", "symbol_error", "symbol_error_total", "Minor link errors on the physical lanes.", 1),
    (
        "counters",
        "VL15_dropped",
        "vl15_dropped_total",
        "Incoming VL15 packets dropped for lack of resources.",
        1,
    ),
    (
        "hw_counters",
        "duplicate_request",
        "duplicate_requests_packets_total",
        "Duplicate requests received.",
        1,
    ),
    ("hw_counters", "implied_nak_seq_err", "implied_nak_seq_errors_total", "Implied NAK sequence errors.", 1),
    (
        "hw_counters",
        "local_ack_timeout_err",
        "local_ack_timeout_errors_total",
        "Sender-side ACK timer expiries (recoverable).",
        1,
    ),
    (
        "hw_counters",
        "np_cnp_sent",
        "np_cnp_packets_sent_total",
        "CNP packets sent by the notification point.",
        1,
    ),
    (
        "hw_counters",
        "np_ecn_marked_roce_packets",
        "np_ecn_marked_roce_packets_received_total",
        "ECN-marked RoCEv2 packets received.",
        1,
    ),
    ("hw_counters", "out_of_buffer", "out_of_buffer_drops_total", "Drops for lack of a work queue entry.", 1),
    (
        "hw_counters",
        "out_of_sequence",
        "out_of_sequence_packets_received_total",
        "Out-of-sequence packets received.",
        1,
    ),
    (
        "hw_counters",
        "packet_seq_err",
        "packet_sequence_errors_total",
        "NAK sequence error packets received.",
        1,
    ),
    ("hw_counters", "req_cqe_error", "req_cqes_errors_total", "Requester CQEs completed with an error.", 1),
    (
        "hw_counters",
        "req_cqe_flush_error",
        "req_cqes_flush_errors_total",
        "Requester CQEs completed with a flush error.",
        1,
    ),
    (
        "hw_counters",
        "req_remote_access_errors",
        "req_remote_access_errors_total",
        "Requester remote access errors.",
        1,
    ),
    (
        "hw_counters",
        "req_remote_invalid_request",
        "req_remote_invalid_request_errors_total",
        "Requester remote invalid request errors.",
        1,
    ),
    ("hw_counters", "resp_cqe_error", "resp_cqes_errors_total", "Responder CQEs completed with an error.", 1),
    (
        "hw_counters",
        "resp_cqe_flush_error",
        "resp_cqes_flush_errors_total",
        "Responder CQEs completed with a flush error.",
        1,
    ),
    (
        "hw_counters",
        "resp_local_length_error",
        "resp_local_length_errors_total",
        "Responder local length errors.",
        1,
    ),
    (
        "hw_counters",
        "resp_remote_access_errors",
        "resp_remote_access_errors_total",
        "Responder remote access errors.",
        1,
    ),
    (
        "hw_counters",
        "rnr_nak_retry_err",
        "rnr_nak_retry_packets_received_total",
        "RNR NAK packets received.",
        1,
    ),
    (
        "hw_counters",
        "roce_adp_retrans",
        "roce_adp_retransmits_total",
        "Adaptive retransmissions of RoCE traffic.",
        1,
    ),
    (
        "hw_counters",
        "roce_adp_retrans_to",
        "roce_adp_retransmits_timeout_total",
        "RoCE adaptive retransmission timeouts.",
        1,
    ),
    (
        "hw_counters",
        "roce_slow_restart",
        "roce_slow_restart_used_total",
        "Times RoCE slow restart was used.",
        1,
    ),
    (
        "hw_counters",
        "roce_slow_restart_cnps",
        "roce_slow_restart_cnps_total",
        "CNP packets generated by RoCE slow restart.",
        1,
    ),
    (
        "hw_counters",
        "roce_slow_restart_trans",
        "roce_slow_restart_total",
        "Times RoCE changed state to slow restart.",
        1,
    ),
    (
        "hw_counters",
        "rp_cnp_handled",
        "rp_cnp_packets_handled_total",
        "CNP packets handled by the reaction point.",
        1,
    ),
    (
        "hw_counters",
        "rp_cnp_ignored",
        "rp_cnp_ignored_packets_received_total",
        "CNP packets received and ignored by the reaction point.",
        1,
    ),
    ("hw_counters", "rx_atomic_requests", "rx_atomic_requests_total", "ATOMIC requests received.", 1),
    (
        "hw_counters",
        "rx_dct_connect",
        "rx_dct_connect_requests_total",
        "DCT connection requests received.",
        1,
    ),
    ("hw_counters", "rx_read_requests", "rx_read_requests_total", "READ requests received.", 1),
    ("hw_counters", "rx_write_requests", "rx_write_requests_total", "WRITE requests received.", 1),
    (
        "hw_counters",
        "rx_icrc_encapsulated",
        "rx_icrc_encapsulated_errors_total",
        "RoCE packets with ICRC errors.",
        1,
    ),
)
_COUNTER_FILES = {(directory, file): (metric, factor) for directory, file, metric, _help, factor in _COUNTERS}
_NOT_AVAILABLE = "N/A (no PMA)"


class Port(NamedTuple):
    number: int
    state_id: int
    physical_state_id: int
    rate: int  # bytes per second
    counters: dict[str, int]  # metric name -> value
    lifespan_ms: int | None  # hw_counters/lifespan


class Device(NamedTuple):
    name: str
    board_id: str
    firmware_version: str
    hca_type: str
    ports: list[Port]


def parse_state(text: str) -> int:
    """``4: ACTIVE`` -> 4. Raises ValueError."""
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"not 'ID: NAME': {text!r}")
    value = parse_uint(parts[0].strip())
    if value > 0xFFFFFFFF:
        raise ValueError(f"state id out of range: {text!r}")
    return value


def parse_rate(text: str) -> int:
    """``40 Gb/sec (4X QDR)`` -> bytes per second, as upstream (the number read as a float32). Raises
    ValueError."""
    number, space, _rest = text.partition(" ")
    if not space:
        raise ValueError(f"no unit in rate {text!r}")
    gbits = struct.unpack("f", struct.pack("f", parse_float(number.strip())))[0]
    return int(gbits * 125_000_000)


def _regular_files(directory: str) -> list[str]:
    try:
        return list_files(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []


def parse_counters(directory: str, files: dict[str, str | None], skipped: list[Skip]) -> dict[str, int]:
    """Values of the known counter files of one counters directory (file -> text, None: unreadable)."""
    values: dict[str, int] = {}
    for file, text in files.items():
        known = _COUNTER_FILES.get((directory, file))
        if known is None or text is None:
            continue
        try:
            values[known[0]] = parse_uint(text) * known[1]
        except ValueError:
            if _NOT_AVAILABLE not in text:
                skipped.append(Skip(f"infiniband {directory}/{file}: not a number", text))
    return values


def read_port(port_dir: str, number: int, skipped: list[Skip]) -> Port | None:
    raw = read_attributes(port_dir, ("link_layer", "state", "phys_state", "rate"))
    missing = [name for name in ("link_layer", "state", "phys_state", "rate") if name not in raw]
    if missing:
        skipped.append(Skip("infiniband port: attribute missing", f"{port_dir}: {', '.join(missing)}"))
        return None
    try:
        state, physical, rate = (
            parse_state(raw["state"]),
            parse_state(raw["phys_state"]),
            parse_rate(raw["rate"]),
        )
    except ValueError as exc:
        skipped.append(Skip("infiniband port: unparsable state or rate", f"{port_dir}: {exc}"))
        return None
    counters: dict[str, int] = {}
    lifespan = None
    for directory in ("counters", "counters_ext", "hw_counters"):
        path = f"{port_dir}/{directory}"
        files: dict[str, str | None] = dict.fromkeys(_regular_files(path))
        files.update(read_attributes(path, files))  # one directory descriptor for all of them
        counters.update(parse_counters(directory, files, skipped))
        if directory == "hw_counters" and files.get("lifespan") is not None:
            try:
                lifespan = parse_uint(files["lifespan"] or "")
            except ValueError:
                skipped.append(Skip("infiniband hw_counters/lifespan: not a number", files["lifespan"]))
    return Port(number, state, physical, rate, counters, lifespan)


def read_device(paths: Paths, name: str, skipped: list[Skip]) -> Device | None:
    directory = paths.sys("class", "infiniband", name)
    attributes = read_attributes(directory, ("fw_ver", "board_id", "hca_type"))
    if "fw_ver" not in attributes:
        skipped.append(Skip("infiniband device without fw_ver", name))
        return None
    try:
        port_names = list_dir(f"{directory}/ports")
    except OSError as exc:
        skipped.append(Skip("infiniband device: cannot list ports", f"{name}: {exc.strerror}"))
        return None
    ports = []
    for port_name in port_names:
        try:
            number = parse_uint(port_name)
        except ValueError:
            skipped.append(Skip("infiniband port: not a number", f"{name}/ports/{port_name}"))
            continue
        port = read_port(f"{directory}/ports/{port_name}", number, skipped)
        if port is not None:
            ports.append(port)
    board, hca = attributes.get("board_id", ""), attributes.get("hca_type", "")
    return Device(valid_text(name), board, attributes["fw_ver"], hca, ports)  # the label must be UTF-8


@register
class InfinibandCollector(Collector):
    name = "infiniband"
    options = (
        CollectorOption("device-include", "", "Regexp of InfiniBand devices to export.", parse_regex),
        CollectorOption("device-exclude", "", "Regexp of InfiniBand devices to leave out.", parse_regex),
    )

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        # Upstream applies both patterns when both are given (no mutual-exclusion check here).
        self.filter = NameFilter(self.opts["device-exclude"], self.opts["device-include"])

    def collect(self) -> Iterable[Metric]:
        try:
            names = list_dir(self.paths.sys("class", "infiniband"))
        except FileNotFoundError as exc:
            raise NoDataError("no InfiniBand devices") from exc
        skipped: list[Skip] = []
        info = gauge("node_infiniband_info", "InfiniBand device identity as labels; always 1.")
        state = gauge(
            "node_infiniband_state_id", "Port state (1 down, 2 init, 3 armed, 4 active, 5 act defer)."
        )
        physical = gauge(
            "node_infiniband_physical_state_id",
            "Port physical state (2 polling, 3 disabled, 5 link up, ...).",
        )
        rate = gauge("node_infiniband_rate_bytes_per_second", "Port signalling rate in bytes per second.")
        lifespan = gauge(
            "node_infiniband_lifespan_seconds", "Period over which hw_counters reads may repeat."
        )
        counters = {
            metric: counter(f"node_infiniband_{metric}", text) for _d, _f, metric, text, _x in _COUNTERS
        }
        for name in names:
            if self.filter.ignored(name):
                continue
            device = read_device(self.paths, name, skipped)
            if device is None:
                continue
            add_sample(
                info,
                {
                    "device": device.name,
                    "board_id": device.board_id,
                    "firmware_version": device.firmware_version,
                    "hca_type": device.hca_type,
                },
                1.0,
            )
            for port in device.ports:
                labels = {"device": device.name, "port": str(port.number)}
                add_sample(state, labels, float(port.state_id))
                add_sample(physical, labels, float(port.physical_state_id))
                add_sample(rate, labels, float(port.rate))
                if port.lifespan_ms is not None:
                    add_sample(lifespan, labels, float(port.lifespan_ms // 1000))
                for metric, value in port.counters.items():
                    add_sample(counters[metric], labels, float(value))
        self.report(skipped)
        yield from (info, state, physical, rate, lifespan)
        yield from counters.values()
