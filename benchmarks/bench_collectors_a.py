"""CPU per scrape of the cpu, cpufreq, meminfo, stat, vmstat, diskstats and filesystem collectors.

Runs our collectors (collect + Go-compatible text rendering, no HTTP) on this host's /proc and /sys, and,
when the Debian ``prometheus-node-exporter`` binary is installed, node_exporter with the same collectors
(measured from its /proc/<pid>/stat over HTTP scrapes, so its number includes HTTP and Go's own metrics).

    python benchmarks/bench_collectors_a.py [--scrapes 300] [--info]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import time
import urllib.request

from nodeagent.metrics.exposition import render_text
from nodeagent.metrics.registry import Paths, build_collectors
from nodeagent.metrics.scrape import run_collectors

COLLECTORS = ["cpu", "cpufreq", "meminfo", "stat", "vmstat", "diskstats", "filesystem"]


def ours(scrapes: int, info: bool) -> dict[str, float]:
    settings = {"collector.cpu.info": info, "collector.stat.softirq": True}
    results = {}
    for names in [[name] for name in COLLECTORS] + [COLLECTORS]:
        collectors = build_collectors(names, Paths(), settings)
        render_text(run_collectors(collectors))  # warm up (thread pool, caches)
        start = time.process_time()
        for _ in range(scrapes):
            render_text(run_collectors(collectors))
        results["+".join(names) if len(names) == 1 else "all"] = (time.process_time() - start) / scrapes
    return results


def _process_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_exporter(scrapes: int, info: bool) -> float | None:
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [
        binary,
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        "--collector.stat.softirq",
        *(f"--collector.{name}" for name in COLLECTORS),
    ]
    if info:
        args.append("--collector.cpu.info")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                opener.open(url, timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        start = _process_cpu_seconds(process.pid)
        for _ in range(scrapes):
            opener.open(url, timeout=5).read()
        return (_process_cpu_seconds(process.pid) - start) / scrapes
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--info", action="store_true", help="also --collector.cpu.info")
    args = parser.parse_args()
    for name, seconds in ours(args.scrapes, args.info).items():
        print(f"nodeagent {name:12s} {seconds * 1e3:7.3f} ms CPU per scrape")
    theirs = node_exporter(args.scrapes, args.info)
    if theirs is None:
        print("node_exporter not installed: no comparison")
    else:
        print(f"node_exporter (same collectors, incl. HTTP and go_/process_ metrics) {theirs * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
