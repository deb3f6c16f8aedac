"""sysctl collector: chosen /proc/sys values."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.config import ConfigError
from nodeagent.metrics._names import sanitize_metric_name
from nodeagent.metrics.registry import collector_settings
from nodeagent.metrics.sysctl import Sysctl, parse_sysctl_spec, sysctl_families
from tests.metrics.conftest import Scraped, write_tree


def test_spec_and_metric_names() -> None:
    assert parse_sysctl_spec("fs.file-nr:total,current,max", True) == Sysctl(
        "fs.file-nr", ("total", "current", "max"), True
    )
    assert sanitize_metric_name("net.ipv4.conf.all.rp_filter") == "net_ipv4_conf_all_rp_filter"
    assert sanitize_metric_name("fs.file-nr") == "fs_file_nr"
    for bad in ("", "fs..file", "../etc/passwd", "fs/file-nr", ".fs"):
        with pytest.raises(ValueError):
            parse_sysctl_spec(bad, True)


def test_a_bad_name_is_refused_as_configuration() -> None:
    with pytest.raises(ConfigError):
        collector_settings()["collector.sysctl.include"].read("../../etc/shadow")


def test_sysctl_numeric_indexed_mapped_and_info(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "proc/sys/fs/file-nr": "1024\t0\t1631329\n",
            "proc/sys/kernel/threads-max": "0x10\n",
            "proc/sys/kernel/seccomp/actions_avail": "kill_process trap\n",
        },
    )
    result = scrape(
        "sysctl",
        include=["fs.file-nr", "fs.file-nr:total,current,max", "kernel.threads-max"],
        include_info=["kernel.seccomp.actions_avail"],
    )
    assert result.ok
    assert result.lines == [
        'node_sysctl_fs_file_nr{index="0"} 1024',
        'node_sysctl_fs_file_nr{index="1"} 0',
        'node_sysctl_fs_file_nr{index="2"} 1.631329e+06',
        "node_sysctl_fs_file_nr_current 0",
        "node_sysctl_fs_file_nr_max 1.631329e+06",
        "node_sysctl_fs_file_nr_total 1024",
        'node_sysctl_info{index="0",name="kernel.seccomp.actions_avail",value="kill_process"} 1',
        'node_sysctl_info{index="1",name="kernel.seccomp.actions_avail",value="trap"} 1',
        "node_sysctl_kernel_threads_max 16",
    ]
    assert "# TYPE node_sysctl_kernel_threads_max untyped" in result.text


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ("fs.file-nr:a,b", "1 2 3"),  # keys do not match the values
        ("kernel.threads-max:a,b", "7"),  # one value, keys given
        ("kernel.threads-max", ""),  # no value
        ("kernel.threads-max", "many"),  # not a number
    ],
)
def test_sysctl_mismatches_are_errors(spec: str, text: str) -> None:
    with pytest.raises(ValueError):
        sysctl_families(parse_sysctl_spec(spec, True), text)


def test_sysctl_error_keeps_earlier_sysctls_and_fails(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/sys/kernel/threads-max": "7801\n"})
    result = scrape("sysctl", include=["kernel.threads-max", "kernel.missing"])
    assert not result.ok and result.lines == ["node_sysctl_kernel_threads_max 7801"]


@settings(max_examples=50, deadline=None)
@given(st.text(), st.booleans())
def test_sysctl_families_raise_only_value_errors(text: str, numeric: bool) -> None:
    with contextlib.suppress(ValueError):
        sysctl_families(parse_sysctl_spec("a.b", numeric), text)
