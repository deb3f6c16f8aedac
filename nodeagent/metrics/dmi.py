"""dmi: the machine's DMI/SMBIOS identification (BIOS, board, chassis, product) from
<sysfs>/class/dmi/id/, as one info metric. Read once, on the first scrape, as upstream reads it once
at startup: these values do not change while the system runs."""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.sysread import sys_read_file
from nodeagent.metrics.registry import Collector, NoDataError, register

# file -> label (the file sys_vendor is the label system_vendor; chassis_type is not exported)
LABELS = {
    "bios_date": "bios_date",
    "bios_release": "bios_release",
    "bios_vendor": "bios_vendor",
    "bios_version": "bios_version",
    "board_asset_tag": "board_asset_tag",
    "board_name": "board_name",
    "board_serial": "board_serial",
    "board_vendor": "board_vendor",
    "board_version": "board_version",
    "chassis_asset_tag": "chassis_asset_tag",
    "chassis_serial": "chassis_serial",
    "chassis_vendor": "chassis_vendor",
    "chassis_version": "chassis_version",
    "product_family": "product_family",
    "product_name": "product_name",
    "product_serial": "product_serial",
    "product_sku": "product_sku",
    "product_uuid": "product_uuid",
    "product_version": "product_version",
    "sys_vendor": "system_vendor",
}


def read_dmi(directory: str) -> dict[str, str]:
    """label -> value of the DMI attributes ``directory`` has as regular files; the ones root alone
    may read (serials, UUID) are left out when unreadable. Raises FileNotFoundError without DMI."""
    labels: dict[str, str] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            label = LABELS.get(entry.name)
            if label is None or not entry.is_file(follow_symlinks=False):
                continue
            try:
                labels[label] = sys_read_file(entry.path)
            except PermissionError:
                continue
    return labels


@register
class DmiCollector(Collector):
    name = "dmi"

    _labels: dict[str, str] | None = None

    def collect(self) -> Iterable[Metric]:
        if self._labels is None:
            try:
                self._labels = read_dmi(self.paths.sys("class", "dmi", "id"))
            except FileNotFoundError:
                self._labels = {}  # no DMI on this platform (most ARM boards, some VMs)
        if not self._labels:
            raise NoDataError("no DMI information")
        info = gauge("node_dmi_info", "DMI identification of this machine in labels; the value is always 1.")
        add_sample(info, self._labels, 1.0)
        return [info]
