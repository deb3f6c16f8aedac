"""dmi collector: /sys/class/dmi/id."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics.dmi import read_dmi
from tests.metrics.conftest import Scraped, write_tree


def test_dmi_labels(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    base = "sys/class/dmi/id"
    write_tree(
        tmp_path,
        {
            f"{base}/sys_vendor": "Dell Inc.\n",
            f"{base}/product_version": b"\xff\x1c[\xfe\n",
            f"{base}/chassis_type": "23\n",
            f"{base}/modalias": "dmi:bvnDell\n",
            f"{base}/bios_version": "x" * 200 + "\n",
        },
    )
    (tmp_path / base / "board_name").symlink_to(tmp_path / base / "sys_vendor")  # not a regular file
    assert read_dmi(str(tmp_path / base)) == {
        "system_vendor": "Dell Inc.",
        "product_version": "\ufffd\x1c[\ufffd",
        "bios_version": "x" * 128,  # one read of 128 bytes, as upstream
    }
    result = scrape("dmi")
    assert result.ok
    # \x1c is a line break to str.splitlines (Scraped.lines): read the text
    labels = f'bios_version="{"x" * 128}",product_version="\ufffd\x1c[\ufffd",system_vendor="Dell Inc."'
    assert f"\nnode_dmi_info{{{labels}}} 1\n" in result.text


def test_dmi_unreadable_attribute_is_left_out(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    base = tmp_path / "sys/class/dmi/id"
    write_tree(
        tmp_path, {"sys/class/dmi/id/product_serial": "secret\n", "sys/class/dmi/id/sys_vendor": "QEMU\n"}
    )
    (base / "product_serial").chmod(0)
    if os.geteuid() == 0:  # root reads anything: the permission case cannot be made here
        return
    assert scrape("dmi").lines == ['node_dmi_info{system_vendor="QEMU"} 1']


def test_dmi_absent_is_no_data(scrape: Callable[..., Scraped]) -> None:
    result = scrape("dmi")
    assert not result.ok and result.lines == []
