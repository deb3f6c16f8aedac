"""drm: AMD GPUs (the amdgpu driver) from <sysfs>/class/drm/card[0-9]/device/: busy percentage, GTT and
VRAM sizes and use, and an info metric (memory vendor, power performance level, unique ID).

As prometheus/procfs: a value the card does not report, or reports unparsably, is 0; cards of other
drivers are left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import list_dir
from nodeagent.metrics.host.gonum import parse_uint
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.host.sysread import sys_read_file
from nodeagent.metrics.registry import Collector, register

_DIGITS = frozenset("0123456789")

# attribute -> (metric, help)
NUMBERS = {
    "gpu_busy_percent": ("node_drm_gpu_busy_percent", "How busy the GPU is, in percent."),
    "mem_info_gtt_total": (
        "node_drm_memory_gtt_size_bytes",
        "Size of the graphics translation table, in bytes.",
    ),
    "mem_info_gtt_used": ("node_drm_memory_gtt_used_bytes", "Graphics translation table in use, in bytes."),
    "mem_info_vis_vram_total": (
        "node_drm_memory_vis_vram_size_bytes",
        "Size of the CPU-visible VRAM, in bytes.",
    ),
    "mem_info_vis_vram_used": ("node_drm_memory_vis_vram_used_bytes", "CPU-visible VRAM in use, in bytes."),
    "mem_info_vram_total": ("node_drm_memory_vram_size_bytes", "Size of the VRAM, in bytes."),
    "mem_info_vram_used": ("node_drm_memory_vram_used_bytes", "VRAM in use, in bytes."),
}
TEXTS = ("mem_info_vram_vendor", "power_dpm_force_performance_level", "unique_id")


def read_card_field(device: str, name: str) -> str | None:
    try:
        return sys_read_file(f"{device}/{name}")
    except OSError:
        return None


def card_number(text: str | None) -> int:
    """An amdgpu attribute as a number: Go's base-0 ParseUint; absent or unparsable is 0."""
    if text is None:
        return 0
    try:
        return parse_uint(text, 0)
    except ValueError:
        return 0


@register
class DrmCollector(Collector):
    name = "drm"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        directory = self.paths.sys("class", "drm")
        try:
            cards = [
                name
                for name in list_dir(directory)
                if len(name) == 5 and name[:4] == "card" and name[4] in _DIGITS
            ]
        except FileNotFoundError:
            cards = []
        info = gauge("node_drm_card_info", "GPU card identity in labels; the value is always 1.")
        families = {attribute: gauge(metric, help_text) for attribute, (metric, help_text) in NUMBERS.items()}
        skipped: list[Skip] = []
        for card in cards:
            device = f"{directory}/{card}/device"
            uevent = read_card_field(device, "uevent")
            if uevent is None:
                skipped.append(Skip("drm: card without a readable device/uevent", card))
                continue
            if "DRIVER=amdgpu" not in uevent:
                continue
            if not os.path.exists(device):  # upstream resolves the device link and fails without one
                skipped.append(Skip("drm: card device link does not resolve", card))
                continue
            labels = {"card": card}
            texts = {name: read_card_field(device, name) or "" for name in TEXTS}
            add_sample(
                info,
                {
                    "card": card,
                    "memory_vendor": texts["mem_info_vram_vendor"],
                    "power_performance_level": texts["power_dpm_force_performance_level"],
                    "unique_id": texts["unique_id"],
                    "vendor": "amd",
                },
                1.0,
            )
            for attribute, family in families.items():
                add_sample(family, labels, card_number(read_card_field(device, attribute)))
        self.report(skipped)
        return [info, *families.values()]
