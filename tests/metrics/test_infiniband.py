"""infiniband collector: devices, port state/rate, counters, hw_counters; malformed files are skipped."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics import _parse_errors
from nodeagent.metrics.infiniband import parse_rate, parse_state
from tests.metrics.conftest import Scraped, write_tree

IB = "sys/class/infiniband"


def _port(device: str, port: str, **files: str) -> dict[str, str | bytes]:
    base = {
        "link_layer": "InfiniBand\n",
        "state": "4: ACTIVE\n",
        "phys_state": "5: LinkUp\n",
        "rate": "40 Gb/sec (4X QDR)\n",
    }
    base.update(files)
    return {f"{IB}/{device}/ports/{port}/{name}": text for name, text in base.items()}


def test_state_and_rate() -> None:
    assert parse_state("4: ACTIVE\n") == 4
    assert parse_rate("10 Gb/sec (4X SDR)") == 1_250_000_000
    assert parse_rate("2.5 Gb/sec (1X SDR)") == 312_500_000
    for bad in ("ACTIVE", "x: ACTIVE", "1:2:3"):
        with pytest.raises(ValueError):
            parse_state(bad)
    for bad in ("40", "fast Gb/sec"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_counters_hw_counters_and_filters(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    files: dict[str, str | bytes] = {
        f"{IB}/mlx5_0/fw_ver": "16.35.1012\n",
        f"{IB}/mlx5_0/hca_type": "MT4119\n",
        **_port("mlx5_0", "1", link_layer="Ethernet\n", rate="100 Gb/sec (4X EDR)\n"),
        f"{IB}/mlx5_0/ports/1/counters/port_rcv_data": "10\n",
        f"{IB}/mlx5_0/ports/1/counters/symbol_error": "N/A (no PMA)\n",
        f"{IB}/mlx5_0/ports/1/counters/link_downed": "many\n",
        f"{IB}/mlx5_0/ports/1/counters/unknown_counter": "1\n",
        f"{IB}/mlx5_0/ports/1/hw_counters/lifespan": "10000\n",
        f"{IB}/mlx5_0/ports/1/hw_counters/out_of_buffer": "7\n",
        f"{IB}/other0/fw_ver": "1\n",
        **_port("other0", "1"),
    }
    write_tree(tmp_path, files)
    before = _parse_errors.count("infiniband")
    result = scrape("infiniband")
    assert result.ok
    lines = result.lines
    assert (
        'node_infiniband_info{board_id="",device="mlx5_0",firmware_version="16.35.1012",hca_type="MT4119"} 1'
        in lines
    )
    assert 'node_infiniband_rate_bytes_per_second{device="mlx5_0",port="1"} 1.25e+10' in lines
    assert 'node_infiniband_port_data_received_bytes_total{device="mlx5_0",port="1"} 40' in lines  # words x4
    assert 'node_infiniband_lifespan_seconds{device="mlx5_0",port="1"} 10' in lines
    assert 'node_infiniband_out_of_buffer_drops_total{device="mlx5_0",port="1"} 7' in lines
    assert not any("symbol_error" in line or "link_downed" in line for line in lines)
    assert _parse_errors.count("infiniband") == before + 1  # "many"; N/A is silent
    only = scrape("infiniband", device_include="^mlx").lines
    assert not any("other0" in line for line in only)
    dropped = scrape("infiniband", device_exclude="^mlx").lines
    assert not any("mlx5_0" in line for line in dropped) and any("other0" in line for line in dropped)


def test_broken_ports_and_devices_are_skipped(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    """Upstream fails the scrape on these; here the rest is still exported."""
    files: dict[str, str | bytes] = {
        f"{IB}/good0/fw_ver": "1\n",
        **_port("good0", "1"),
        **_port("good0", "2", state="garbage\n"),  # unparsable state
        **_port("good0", "x"),  # port directory not a number
        f"{IB}/good0/ports/3/rate": "40 Gb/sec\n",  # truncated: no state files
        **_port("nofw0", "1"),  # no fw_ver
        f"{IB}/noports0/fw_ver": "1\n",  # no ports directory
    }
    write_tree(tmp_path, files)
    before = _parse_errors.count("infiniband")
    result = scrape("infiniband")
    assert result.ok
    assert [line for line in result.lines if line.startswith("node_infiniband_state_id")] == [
        'node_infiniband_state_id{device="good0",port="1"} 4'
    ]
    assert _parse_errors.count("infiniband") == before + 5


def test_no_infiniband_is_no_data(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"sys/class/net/lo/mtu": "65536\n"})
    result = scrape("infiniband")
    assert not result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_port_file_parsers_raise_only_value_error(text: str) -> None:
    for parse in (parse_state, parse_rate):
        with contextlib.suppress(ValueError):
            parse(text)
