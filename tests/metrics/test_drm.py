"""drm collector: amdgpu cards under /sys/class/drm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics.drm import card_number
from tests.metrics.conftest import Scraped, write_tree


def test_drm_amdgpu_card(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    device = "sys/devices/pci0000:00/0000:00:01.0"
    write_tree(
        tmp_path,
        {
            f"{device}/uevent": "DRIVER=amdgpu\nPCI_CLASS=30000\n",
            f"{device}/gpu_busy_percent": "4\n",
            f"{device}/mem_info_vram_total": "8573157376\n",
            f"{device}/mem_info_vram_used": "garbage\n",
            f"{device}/mem_info_vram_vendor": "samsung\n",
            f"{device}/power_dpm_force_performance_level": "manual\n",
            f"{device}/unique_id": "0123456789abcdef\n",
            "sys/devices/other/uevent": "DRIVER=i915\n",
        },
    )
    drm = tmp_path / "sys/class/drm"
    for card, target in (("card0", device), ("card1", "sys/devices/other")):
        (drm / card).mkdir(parents=True)
        (drm / card / "device").symlink_to(tmp_path / target)
    (drm / "card0-DP-1").mkdir()  # a connector, not a card
    (drm / "card2").mkdir()  # no device: skipped
    result = scrape("drm")
    assert result.ok
    assert result.lines == [
        'node_drm_card_info{card="card0",memory_vendor="samsung",power_performance_level="manual",'
        'unique_id="0123456789abcdef",vendor="amd"} 1',
        'node_drm_gpu_busy_percent{card="card0"} 4',
        'node_drm_memory_gtt_size_bytes{card="card0"} 0',
        'node_drm_memory_gtt_used_bytes{card="card0"} 0',
        'node_drm_memory_vis_vram_size_bytes{card="card0"} 0',
        'node_drm_memory_vis_vram_used_bytes{card="card0"} 0',
        'node_drm_memory_vram_size_bytes{card="card0"} 8.573157376e+09',
        'node_drm_memory_vram_used_bytes{card="card0"} 0',
    ]


def test_card_numbers_as_prometheus_procfs() -> None:
    assert card_number("0x10") == 16
    assert card_number(None) == 0
    assert card_number("-1") == 0


def test_no_drm_class_is_empty(scrape: Callable[..., Scraped]) -> None:
    result = scrape("drm")
    assert result.ok and result.lines == []
