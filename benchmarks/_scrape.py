"""Scraping nodeagent and Debian's prometheus-node-exporter side by side on the collectors both enable by
default: shared by benchmarks/scrape and benchmarks/lean."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks._common import cpu_seconds, free_port, rss_bytes, running

_SUCCESS = re.compile(r'^node_scrape_collector_success\{collector="([^"]+)"\}', re.MULTILINE)


@dataclass
class Target:
    name: str
    port: int
    pid: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"plain": [], "gzip": []})
    cpu: dict[str, float] = field(default_factory=dict)
    body_bytes: dict[str, int] = field(default_factory=dict)
    series: int = 0
    rss: int = 0
    connection: http.client.HTTPConnection | None = None

    def scrape(self, compress: bool) -> tuple[float, bytes]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Accept-Encoding": "gzip"} if compress else {}
        start = time.perf_counter()
        self.connection.request("GET", "/metrics", headers=headers)
        response = self.connection.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"{self.name} answered {response.status}: {body[:200]!r}")
        return elapsed, body


def node_exporter_defaults(binary: str) -> set[str]:
    """Collectors the peer enables by default on this host (read from its own scrape)."""
    port = free_port()
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--no-collector.systemd"]
    with running(argv, f"http://127.0.0.1:{port}/metrics"):
        target = Target("node_exporter", port)
        _, body = target.scrape(False)
    return set(_SUCCESS.findall(body.decode()))


def nodeagent_defaults() -> set[str]:
    from nodeagent.metrics.registry import all_collectors

    return {name for name, cls in all_collectors().items() if cls.default_enabled}


def import_floor_rss() -> dict[str, int]:
    """RSS of an idle interpreter, and of one that imported only the agent's dependencies (context for
    the agent's own RSS: how much of it the runtime and libraries take before any nodeagent code)."""
    floors = {}
    for label, code in (
        ("python interpreter alone", ""),
        (
            "python + aiohttp, prometheus_client, yaml",
            "import asyncio, aiohttp.web, prometheus_client, yaml\n",
        ),
    ):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                code + "import sys; sys.stdout.write('ok\\n'); sys.stdout.flush(); sys.stdin.read()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdout and proc.stdin
        try:
            proc.stdout.readline()
            floors[label] = rss_bytes(proc.pid)
        finally:
            proc.stdin.close()
            proc.wait(timeout=10)
    return floors


def measure(targets: list[Target], scrapes: int, warmup: int) -> None:
    for mode in ("plain", "gzip"):
        compress = mode == "gzip"
        for target in targets:
            for _ in range(warmup):
                target.scrape(compress)
        before = {t.name: cpu_seconds(t.pid) for t in targets}
        for _ in range(scrapes):
            for target in targets:  # alternate, so both see the same host conditions
                elapsed, body = target.scrape(compress)
                target.latencies[mode].append(elapsed)
                target.body_bytes[mode] = len(body)
                if not compress:
                    target.series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
        for target in targets:
            target.cpu[mode] = (cpu_seconds(target.pid) - before[target.name]) / scrapes
    for target in targets:
        target.rss = rss_bytes(target.pid)


def common_collectors(node_exporter: str, only: Sequence[str] = ()) -> list[str]:
    """The collectors both enable by default on this host (narrowed to ``only`` when given)."""
    common = sorted(node_exporter_defaults(node_exporter) & nodeagent_defaults())
    return sorted(set(common) & set(only)) if only else common


def collector_switches(collectors: Sequence[str]) -> list[str]:
    """The flags (the same for both exporters) that enable exactly ``collectors``."""
    return ["--collector.disable-defaults", *(f"--collector.{name}" for name in collectors)]
