"""CPU per scrape of the group C collectors (hardware, time, os, textfile, ...).

Runs our collectors (collect + Go-compatible text rendering, no HTTP) on two hosts: this machine's
/proc and /sys, and node_exporter's fake host (a copy of its fixture with symlinks restored, which
has the hwmon, thermal, power supply, EDAC, watchdog and md data most VMs lack). When the Debian
``prometheus-node-exporter`` binary is installed, node_exporter runs with the same collectors on the
same roots (its number is from /proc/<pid>/stat over HTTP scrapes, so it includes HTTP and Go's own
metrics; the 1.5 Debian build has no watchdog collector).

    python benchmarks/bench_collectors_c.py [--scrapes 300]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks._common import cpu_seconds, free_port, running
from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.registry import Paths, build_collectors
from nodeagent.metrics.scrape import run_collectors
from tests.conftest import NODE_EXPORTER_FIXTURE, materialize_node_exporter_fixture

COLLECTORS = [
    "filefd",
    "entropy",
    "pressure",
    "schedstat",
    "time",
    "timex",
    "uname",
    "os",
    "textfile",
    "mdadm",
    "hwmon",
    "thermal_zone",
    "edac",
    "powersupplyclass",
    "watchdog",
]
NODE_EXPORTER_1_5_LACKS = {"watchdog"}


def ours(paths: Paths, settings: dict[str, object], scrapes: int) -> dict[str, float]:
    results = {}
    for names in [[name] for name in COLLECTORS] + [COLLECTORS]:
        collectors = build_collectors(names, paths, settings)
        render_text(run_collectors(collectors))  # warm up (caches, ctypes, regexps)
        start = time.process_time()
        for _ in range(scrapes):
            render_text(run_collectors(collectors))
        results[names[0] if len(names) == 1 else "all"] = (time.process_time() - start) / scrapes
    return results


def node_exporter(paths: Paths, textfile_dir: str, scrapes: int) -> float | None:
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        return None
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    argv = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        f"--path.procfs={paths.procfs}",
        f"--path.sysfs={paths.sysfs}",
        f"--path.rootfs={paths.rootfs}",
        f"--collector.textfile.directory={textfile_dir}",
        *(f"--collector.{name}" for name in COLLECTORS if name not in NODE_EXPORTER_1_5_LACKS),
    ]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with running(argv, url) as proc:
        opener.open(url, timeout=5).read()
        start = cpu_seconds(proc.pid)
        for _ in range(scrapes):
            opener.open(url, timeout=5).read()
        return (cpu_seconds(proc.pid) - start) / scrapes


def report(title: str, paths: Paths, textfile_dir: str, scrapes: int) -> None:
    print(f"== {title}")
    for name, seconds in ours(paths, {"collector.textfile.directory": textfile_dir}, scrapes).items():
        print(f"nodeagent {name:17s} {seconds * 1e3:7.3f} ms CPU per scrape")
    theirs = node_exporter(paths, textfile_dir, scrapes)
    if theirs is None:
        print("node_exporter not installed: no comparison")
    else:
        print(f"node_exporter (same collectors, incl. HTTP and go_/process_ metrics) {theirs * 1e3:7.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300)
    args = parser.parse_args()
    report("this host", Paths(), "", args.scrapes)
    if not NODE_EXPORTER_FIXTURE.exists():
        print(f"{NODE_EXPORTER_FIXTURE} missing: fixture host skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        fixture = materialize_node_exporter_fixture(NODE_EXPORTER_FIXTURE, Path(tmp) / "fixture")
        paths = Paths(
            procfs=fixture / "proc",
            sysfs=fixture / "sys",
            rootfs=fixture,
            udev_data=fixture / "udev" / "data",
        )
        report(
            "node_exporter's fixture host",
            paths,
            str(fixture / "textfile" / "two_metric_files"),
            args.scrapes,
        )


if __name__ == "__main__":
    main()
