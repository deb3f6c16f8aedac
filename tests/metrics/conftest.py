"""Fixtures shared by the collector tests: a fake host tree and one way to scrape a collector on it.

- ``host_tree({"proc/stat": "...", "sys/class/net/lo/mtu": "65536\\n"})`` writes files (str or bytes)
  below the test's tree root (``tmp_path``) and returns the root.
- ``scrape("netdev", netlink=False, device_include="lo")`` runs one collector on that tree with its
  options (``device_include`` is ``--collector.netdev.device-include``; ``root=`` scrapes another tree)
  and returns a :class:`Scraped`: the sample lines without HELP/TYPE and scrape_collector lines, whether
  the collector succeeded, and the whole text.
- Parse errors are read one way: ``nodeagent.metrics._parse_errors.count(collector)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.host.files import Paths
from nodeagent.metrics.registry import build_collectors
from nodeagent.metrics.scrape import run_collectors


def tree_paths(root: Path) -> Paths:
    """The --path.* roots of a fake host tree (proc/, sys/, udev/ below ``root``)."""
    return Paths(procfs=root / "proc", sysfs=root / "sys", rootfs=root, udev_data=root / "udev")


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


@dataclass
class Scraped:
    lines: list[str]  # sample lines, without HELP/TYPE and node_scrape_collector_*
    ok: bool  # node_scrape_collector_success 1
    text: str  # the whole exposition


def scrape_tree(root: Path, collector: str, **options: object) -> Scraped:
    settings = {f"collector.{collector}.{key.replace('_', '-')}": value for key, value in options.items()}
    text = render_text(run_collectors(build_collectors([collector], tree_paths(root), settings)))
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    ok = f'node_scrape_collector_success{{collector="{collector}"}} 1' in lines
    return Scraped([line for line in lines if not line.startswith("node_scrape_collector_")], ok, text)


@pytest.fixture
def host_tree(tmp_path: Path) -> Callable[..., Path]:
    def build(files: dict[str, str | bytes] | None = None, root: Path | None = None) -> Path:
        return write_tree(root or tmp_path, files or {})

    return build


@pytest.fixture
def scrape(tmp_path: Path) -> Callable[..., Scraped]:
    def run(collector: str, root: Path | None = None, **options: object) -> Scraped:
        return scrape_tree(root or tmp_path, collector, **options)

    return run
