"""nvme: NVMe controllers and their namespaces from <sysfs>/class/nvme/<controller>/.

Per controller: ``node_nvme_info`` (firmware revision, model, serial, state, controller ID). Per
namespace directory (``nvme<C>n<N>``): ``node_nvme_namespace_info`` (ANA state, "unknown" without
one) and size, capacity and used bytes (block counts times the logical block size) with the block
size. A missing or unparsable value is reported and counts as "" or 0. No nvme class: no data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import list_dir, read_attribute_or_none, read_attributes
from nodeagent.metrics.host.gonum import MAX_UINT64, parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysfs import class_devices
from nodeagent.metrics.registry import Collector, NoDataError, register

_NAMESPACE = re.compile(r"nvme[0-9]+n([0-9]+)")
_CONTROLLER_ATTRIBUTES = ("firmware_rev", "model", "serial", "state", "cntlid")
INFO_LABELS = {"firmware_revision": "firmware_rev", "model": "model", "serial": "serial", "state": "state"}


def _blocks(directory: str, name: str, skipped: list[Skip]) -> int:
    text = read_attribute_or_none(f"{directory}/{name}")
    if text is None:
        skipped.append(Skip("nvme namespace attribute missing", f"{directory}/{name}"))
        return 0
    try:
        return parse_uint(text)
    except ValueError:
        return 0  # node_exporter counts an unparsable value as 0 without an error


class Namespace(NamedTuple):
    id: str
    ana_state: str
    used_bytes: int
    size_bytes: int
    block_size: int


def read_namespaces(controller: str) -> tuple[list[Namespace], list[Skip]]:
    """The namespace directories of a controller."""
    namespaces: list[Namespace] = []
    skipped: list[Skip] = []
    for name in list_dir(controller):
        match = _NAMESPACE.search(name)
        if match is None:
            continue
        directory = f"{controller}/{name}"
        used = _blocks(directory, "nuse", skipped)
        size = _blocks(directory, "size", skipped)
        block = _blocks(directory, "queue/logical_block_size", skipped)
        namespaces.append(
            Namespace(
                id=match.group(1),
                ana_state=read_attribute_or_none(f"{directory}/ana_state") or "unknown",
                used_bytes=used * block % (MAX_UINT64 + 1),  # uint64 arithmetic, as node_exporter
                size_bytes=size * block % (MAX_UINT64 + 1),
                block_size=block,
            )
        )
    return namespaces, skipped


@register
class NvmeCollector(Collector):
    name = "nvme"

    def collect(self) -> Iterable[Metric]:
        try:
            controllers = class_devices(self.paths, "nvme")
        except (FileNotFoundError, NotADirectoryError):
            raise NoDataError("no nvme class") from None
        info = gauge("node_nvme_info", "NVMe controller attributes; always 1.")
        namespace_info = gauge("node_nvme_namespace_info", "NVMe namespace attributes; always 1.")
        capacity = gauge("node_nvme_namespace_capacity_bytes", "Capacity of the namespace, in bytes.")
        size = gauge("node_nvme_namespace_size_bytes", "Size of the namespace, in bytes.")
        used = gauge("node_nvme_namespace_used_bytes", "Space used in the namespace, in bytes.")
        block = gauge("node_nvme_namespace_logical_block_size_bytes", "Logical block size of the namespace.")
        for name, directory in controllers:
            attributes = read_attributes(directory, _CONTROLLER_ATTRIBUTES)
            missing = [key for key in _CONTROLLER_ATTRIBUTES if key not in attributes]
            if missing:
                self.skip("nvme controller attributes missing", f"{name}: {', '.join(missing)}")
            labels = {label: attributes.get(attribute, "") for label, attribute in INFO_LABELS.items()}
            add_sample(info, {"device": name, **labels, "cntlid": attributes.get("cntlid", "")}, 1.0)
            try:
                namespaces, skipped = read_namespaces(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue  # the controller went away
            self.report(skipped)
            for namespace in namespaces:
                ns_labels = {"device": name, "nsid": namespace.id}
                add_sample(namespace_info, {**ns_labels, "ana_state": namespace.ana_state}, 1.0)
                add_sample(capacity, ns_labels, float(namespace.size_bytes))
                add_sample(size, ns_labels, float(namespace.size_bytes))
                add_sample(used, ns_labels, float(namespace.used_bytes))
                add_sample(block, ns_labels, float(namespace.block_size))
        return [info, namespace_info, capacity, size, used, block]
