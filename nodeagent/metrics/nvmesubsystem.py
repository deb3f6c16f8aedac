"""nvmesubsystem: NVMe subsystems (NVMe-oF multipath) from <sysfs>/class/nvme-subsystem/ (off by default).

Per subsystem (``nvme-subsys<N>``): NQN, model, serial and I/O policy; each namespace block device
(``nvme<C>n<N>``); the number of controller paths and of live ones; per controller path
(``nvme<C>``, with its transport) a state set over the kernel's controller states ("deleting (no IO)"
counts as deleting, any other state as unknown). A missing attribute is reported and left empty.
No nvme-subsystem class (or no permission to list it): no data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import list_dir, read_attributes
from nodeagent.metrics.registry import Collector, NoDataError, register

CONTROLLER_STATES = {
    "live": "live",
    "connecting": "connecting",
    "resetting": "resetting",
    "dead": "dead",
    "deleting": "deleting",
    "deleting (no IO)": "deleting",
    "new": "new",
}
METRIC_STATES = tuple(sorted({*CONTROLLER_STATES.values(), "unknown"}))
_CONTROLLER = re.compile(r"nvme[0-9]+")
_NAMESPACE = re.compile(r"nvme[0-9]+n[0-9]+")
_SUBSYSTEM_ATTRIBUTES = {"nqn": "subsysnqn", "model": "model", "serial": "serial", "iopolicy": "iopolicy"}


@register
class NvmesubsystemCollector(Collector):
    name = "nvmesubsystem"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        base = self.paths.sys("class", "nvme-subsystem")
        try:
            names = [name for name in list_dir(base) if name.startswith("nvme-subsys")]
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            raise NoDataError("no nvme-subsystem class") from None
        info = gauge("node_nvmesubsystem_info", "NVMe subsystem attributes; always 1.")
        namespace_info = gauge(
            "node_nvmesubsystem_namespace_info", "A namespace block device of the subsystem."
        )
        paths = gauge("node_nvmesubsystem_paths", "Controller paths of the subsystem.")
        live_paths = gauge(
            "node_nvmesubsystem_paths_live", "Controller paths of the subsystem in state live."
        )
        path_state = gauge(
            "node_nvmesubsystem_path_state", "1 for the controller path's state, 0 for the others."
        )
        for name in names:
            directory = f"{base}/{name}"
            attributes = read_attributes(directory, _SUBSYSTEM_ATTRIBUTES.values())
            self._missing(name, _SUBSYSTEM_ATTRIBUTES.values(), attributes)
            labels = {
                label: attributes.get(attribute, "") for label, attribute in _SUBSYSTEM_ATTRIBUTES.items()
            }
            add_sample(info, {"subsystem": name, **labels}, 1.0)
            try:
                entries = list_dir(directory)
            except (FileNotFoundError, NotADirectoryError):
                entries = []
            live = total = 0
            for entry in entries:
                if _CONTROLLER.fullmatch(entry):
                    controller = read_attributes(f"{directory}/{entry}", ("state", "transport", "address"))
                    self._missing(f"{name}/{entry}", ("state", "transport", "address"), controller)
                    state = CONTROLLER_STATES.get(controller.get("state", ""), "unknown")
                    total += 1
                    live += state == "live"
                    transport = controller.get("transport", "")
                    for candidate in METRIC_STATES:
                        state_labels = {"subsystem": name, "controller": entry, "transport": transport}
                        add_sample(
                            path_state, {**state_labels, "state": candidate}, float(candidate == state)
                        )
                elif _NAMESPACE.fullmatch(entry):
                    add_sample(namespace_info, {"subsystem": name, "device": entry}, 1.0)
            add_sample(paths, {"subsystem": name}, float(total))
            add_sample(live_paths, {"subsystem": name}, float(live))
        return [info, namespace_info, paths, live_paths, path_state]

    def _missing(self, where: str, wanted: Iterable[str], found: dict[str, str]) -> None:
        missing = [name for name in wanted if name not in found]
        if missing:
            self.skip("nvme-subsystem attributes missing", f"{where}: {', '.join(missing)}")
