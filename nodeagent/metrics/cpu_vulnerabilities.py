"""cpu_vulnerabilities: the kernel's verdict on each CPU vulnerability, from
<sysfs>/devices/system/cpu/vulnerabilities/*, as an info metric (state and mitigation in labels)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import list_dir, read_text
from nodeagent.metrics.registry import Collector, register

_STATES = ("not affected", "vulnerable", "mitigation", "unknown")


def parse_vulnerability(text: str) -> tuple[str, str]:
    """A vulnerability file -> (state, mitigation). The state is the recognised prefix (compared
    case-insensitively); the mitigation is the text after the first word, except for "not affected",
    which has none. Unrecognised text is state "unknown" with the whole text as mitigation."""
    text = text.strip()
    lowered = text.lower()
    for state in _STATES:
        if lowered.startswith(state):
            if state == "not affected":
                return state, ""
            return state, " ".join(text.split()[1:])
    return "unknown", text


@register
class CpuVulnerabilitiesCollector(Collector):
    name = "cpu_vulnerabilities"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        directory = self.paths.sys("devices", "system", "cpu", "vulnerabilities")
        try:
            names = list_dir(directory)
        except FileNotFoundError:
            names = []  # an old kernel: no vulnerabilities directory, nothing to report (as upstream's glob)
        info = gauge(
            "node_cpu_vulnerabilities_info",
            "CPU vulnerabilities as the kernel reports them: state (not affected, vulnerable, mitigation, "
            "unknown) and mitigation text in labels; the value is always 1.",
        )
        for name in names:
            state, mitigation = parse_vulnerability(read_text(f"{directory}/{name}"))
            add_sample(info, {"codename": name, "state": state, "mitigation": mitigation}, 1.0)
        return [info]
