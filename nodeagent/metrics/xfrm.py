"""xfrm: IPsec transformation (XFRM) error counters from <procfs>/net/xfrm_stat.

Every one of the 28 counters the kernel documents is exported, 0 when the file lacks it, as upstream
(``XfrmInStateProtoError`` -> ``node_xfrm_in_state_proto_error_packets_total``). Upstream fails the scrape
on a malformed line; here the line is skipped and reported. A kernel without CONFIG_XFRM_STATISTICS has
no such file: nothing is reported, no error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import counter, single
from nodeagent.metrics.host.files import read_text
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register

# (kernel name, help) in upstream's order.
XFRM_COUNTERS = (
    ("XfrmInError", "Inbound errors not counted elsewhere."),
    ("XfrmInBufferError", "Inbound packets dropped for lack of buffers."),
    ("XfrmInHdrError", "Inbound header errors."),
    ("XfrmInNoStates", "Inbound packets without a matching state (SPI, address or protocol)."),
    ("XfrmInStateProtoError", "Inbound transformation protocol errors (e.g. a wrong key)."),
    ("XfrmInStateModeError", "Inbound transformation mode errors."),
    ("XfrmInStateSeqError", "Inbound sequence numbers out of the window."),
    ("XfrmInStateExpired", "Inbound packets for an expired state."),
    ("XfrmInStateMismatch", "Inbound packets whose state options mismatch (e.g. UDP encapsulation)."),
    ("XfrmInStateInvalid", "Inbound packets for an invalid state."),
    ("XfrmInTmplMismatch", "Inbound packets matching no template of their policy."),
    ("XfrmInNoPols", "Inbound packets with correct states but no policy."),
    ("XfrmInPolBlock", "Inbound packets blocked by policy."),
    ("XfrmInPolError", "Inbound policy errors."),
    ("XfrmOutError", "Outbound errors not counted elsewhere."),
    ("XfrmOutBundleGenError", "Outbound bundle generation errors."),
    ("XfrmOutBundleCheckError", "Outbound bundle check errors."),
    ("XfrmOutNoStates", "Outbound packets without a state."),
    ("XfrmOutStateProtoError", "Outbound transformation protocol errors."),
    ("XfrmOutStateModeError", "Outbound transformation mode errors."),
    ("XfrmOutStateSeqError", "Outbound sequence number overflows."),
    ("XfrmOutStateExpired", "Outbound packets for an expired state."),
    ("XfrmOutPolBlock", "Outbound packets blocked by policy."),
    ("XfrmOutPolDead", "Outbound packets for a dead policy."),
    ("XfrmOutPolError", "Outbound policy errors."),
    ("XfrmFwdHdrError", "Forwarded packets with a header error."),
    ("XfrmOutStateInvalid", "Outbound packets for an invalid state."),
    ("XfrmAcquireError", "State acquisitions that failed."),
)
_KNOWN = frozenset(name for name, _help in XFRM_COUNTERS)
_WORD = re.compile(r"[A-Z][a-z]*")


def metric_name(kernel_name: str) -> str:
    """``XfrmInStateProtoError`` -> ``node_xfrm_in_state_proto_error_packets_total``."""
    words = _WORD.findall(kernel_name.removeprefix("Xfrm"))
    return "node_xfrm_" + "_".join(word.lower() for word in words) + "_packets_total"


def parse_xfrm_stat(text: str) -> tuple[dict[str, int], list[Skip]]:
    """Kernel counter name -> value for the known counters; lines not ``Name number`` are skipped."""
    values: dict[str, int] = {}
    skipped: list[Skip] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 2:
                raise ValueError
            value = parse_int(fields[1])
        except ValueError:
            skipped.append(Skip("net/xfrm_stat: not 'Name number'", line))
            continue
        if fields[0] in _KNOWN:
            values[fields[0]] = value
    return values, skipped


@register
class XfrmCollector(Collector):
    name = "xfrm"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        try:
            text = read_text(self.paths.proc("net", "xfrm_stat"))
        except FileNotFoundError as exc:
            raise NoDataError("no net/xfrm_stat (kernel without CONFIG_XFRM_STATISTICS)") from exc
        values, skipped = parse_xfrm_stat(text)
        self.report(skipped)
        for kernel_name, help_text in XFRM_COUNTERS:
            yield single(counter(metric_name(kernel_name), help_text), float(values.get(kernel_name, 0)))
