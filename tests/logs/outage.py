"""A Loki outage on a busy node, as a reusable scenario (the test runs it briefly, ``benchmarks/logs-outage``
for the issue's five minutes).

The real agent (a subprocess, metrics on) tails a CRI container log that a writer thread fills at
``rate`` bytes/s and rotates the way the kubelet does: at ``rotate_bytes`` the file is renamed to
``0.log.<n>`` and a new ``0.log`` is started; of the rotated files only ``keep - 1`` stay (the oldest are
deleted). Loki (the strict fake of test_sink_loki, in a thread) answers 503 for the whole time the writer
writes, then comes back; the agent is given time to deliver everything it still can.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from tests.conftest import ROOT, free_port
from tests.logs.test_sink_loki import FakeLoki

MiB = 1024 * 1024


class LokiThread:
    """The fake Loki on 127.0.0.1 in its own thread and event loop; ``delay`` slows every push."""

    def __init__(self, keep_pushes: bool = True) -> None:
        self.fake = FakeLoki()
        self.keep_pushes = keep_pushes  # False: only the lines are kept (long runs)
        self.received: list[str] = []  # every line accepted, in order of arrival
        self.accepted = 0  # pushes accepted
        self.delay = 0.0
        self.ready = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=64 * MiB)
        app.router.add_post("/loki/api/v1/push", self._push)
        runner = web.AppRunner(app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    async def _push(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        response = await self.fake.push(request)
        if response.status == 204:
            body = self.fake.pushes[-1] if self.keep_pushes else self.fake.pushes.pop()
            if not self.keep_pushes:
                self.fake.requests.clear()
            self.received.extend(line for stream in body["streams"] for _ts, line in stream["values"])
            self.accepted += 1
        return response

    def __enter__(self) -> LokiThread:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def lines(self) -> list[str]:
        return list(self.received)

    def pushes(self) -> int:
        return self.accepted


def message(n: int) -> str:
    return f"n={n:09d} {'x' * 160}"


def number(line: str) -> int:
    return int(line[2:11])


def is_whole(line: str) -> bool:
    return line[:2] == "n=" and line[2:11].isdigit() and line == message(number(line))


class KubeletWriter(threading.Thread):
    """CRI lines at ``rate`` bytes/s into ``<pod dir>/0.log``, rotated kubelet-style."""

    def __init__(self, directory: Path, seconds: float, rate: float, rotate_bytes: int, keep: int) -> None:
        super().__init__(daemon=True)
        self.directory, self.seconds, self.rate = directory, seconds, rate
        self.rotate_bytes, self.keep = rotate_bytes, keep
        self.written = 0  # lines written: "n=<number> <pad>", numbered from 0
        self.written_bytes = 0
        self.deleted: list[tuple[int, int]] = []  # [first, last) line numbers of each deleted file
        self.deleted_bytes = 0
        self.rotations = 0

    def run(self) -> None:
        rotated: list[tuple[Path, int, int, int]] = []  # (path, first line, end line, bytes)
        current = self.directory / "0.log"
        handle = open(current, "ab")  # noqa: SIM115 - closed at rotation and at the end
        first, size, n = 0, 0, 0
        started = time.monotonic()
        chunk_lines = max(1, int(self.rate * 0.02 / 200))  # a write every ~20 ms
        try:
            while time.monotonic() - started < self.seconds:
                parts = []
                for _ in range(chunk_lines):
                    stamp = f"2026-11-30T10:00:00.{n % 1_000_000_000:09d}Z"
                    parts.append(f"{stamp} stdout F {message(n)}\n".encode())
                    n += 1
                data = b"".join(parts)
                self.written, self.written_bytes = n, self.written_bytes + len(data)
                handle.write(data)
                handle.flush()
                size += len(data)
                if size >= self.rotate_bytes:
                    handle.close()
                    self.rotations += 1
                    target = self.directory / f"0.log.{self.rotations:06d}"
                    os.rename(current, target)
                    rotated.append((target, first, n, size))
                    handle = open(current, "ab")  # noqa: SIM115
                    first, size = n, 0
                    while len(rotated) > self.keep - 1:
                        path, lo, hi, nbytes = rotated.pop(0)
                        path.unlink()
                        self.deleted.append((lo, hi))
                        self.deleted_bytes += nbytes
                ahead = started + self.written_bytes / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        finally:
            handle.close()


@dataclass
class OutageResult:
    seconds: float
    written_lines: int
    written_bytes: int
    rotations: int
    deleted_lines: int  # lines in files the rotation deleted (read or not)
    deleted: list[tuple[int, int]] = field(repr=False)  # [first, end) line numbers of each deleted file
    deleted_bytes: int
    delivered_unique: int
    duplicates: int
    missing: set[int] = field(repr=False)  # numbers of the lines never delivered whole
    missing_bytes: int = 0  # bytes of the CRI lines never delivered
    metrics: dict[str, float] = field(default_factory=dict)
    catch_up_seconds: float = 0.0


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("nodeagent_logs_") and " " in line:
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def total(metrics: dict[str, float], prefix: str) -> float:
    return sum(v for k, v in metrics.items() if k == prefix or k.startswith(prefix + "{"))


def run_outage(
    workdir: Path,
    *,
    seconds: float,
    disk_buffer: bool,
    rate: float = 2e6,
    rotate_bytes: int = 10 * MiB,
    keep: int = 5,
    deleted_file_timeout: str | None = None,
    catch_up_timeout: float = 300,
) -> OutageResult:
    logs = workdir / "logs"
    pod = logs / "shop_cart-0_u-1" / "cart"
    pod.mkdir(parents=True)
    (pod / "0.log").touch()
    port = free_port()
    buffer = "\n      buffer: {type: disk, max_size: 2GiB}" if disk_buffer else ""
    tuning = f"\n  deleted_file_timeout: {deleted_file_timeout}" if deleted_file_timeout else ""
    config = workdir / "agent.yaml"
    config.write_text(f"""
web:
  listen-address: 127.0.0.1:{port}
logs:
  state_dir: {workdir / "state"}
  batch_timeout: 100ms
  retry_initial_backoff: 100ms
  retry_max_backoff: 1s{tuning}
  inputs:
    - name: pods
      paths: ["{logs}/*/*/*.log"]
      format: cri
  sinks:
    - type: loki
      url: LOKI
      line_format: message{buffer}
""")
    stderr_path = workdir / "agent.stderr"
    with LokiThread(keep_pushes=False) as loki, open(stderr_path, "wb") as stderr:
        config.write_text(config.read_text().replace("LOKI", loki.url))
        loki.fake.fail_with = (503, "down for maintenance")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        for key in ("NODEAGENT_POD_NAME", "NODEAGENT_POD_NAMESPACE", "NODEAGENT_POD_UID"):
            env.pop(key, None)
        argv = [sys.executable, "-m", "nodeagent", "run", "--config", str(config), "--node-name", "outage"]
        agent = subprocess.Popen(
            [*argv, "--collector.disable-defaults"], stdout=subprocess.DEVNULL, stderr=stderr, env=env
        )
        try:
            deadline = time.monotonic() + 30
            while b"log shipper started" not in stderr_path.read_bytes():
                if agent.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"agent not ready:\n{stderr_path.read_text(errors='replace')}")
                time.sleep(0.05)
            writer = KubeletWriter(pod, seconds, rate, rotate_bytes, keep)
            writer.start()
            writer.join()
            loki.fake.fail_with = None  # Loki is back
            back = time.monotonic()
            deadline = back + catch_up_timeout
            stable_since, last = time.monotonic(), -1
            while time.monotonic() < deadline:
                delivered = len(loki.received)
                if delivered != last:
                    stable_since, last = time.monotonic(), delivered
                metrics = scrape(port)
                idle = total(metrics, "nodeagent_logs_buffer_bytes") == 0 and (
                    total(metrics, "nodeagent_logs_disk_buffer_records") == 0
                )
                if delivered >= writer.written and len(set(loki.received)) >= writer.written:
                    break
                if idle and time.monotonic() - stable_since > 5:
                    break
                time.sleep(0.5)
            catch_up = time.monotonic() - back
            metrics = scrape(port)
        finally:
            agent.terminate()
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(10)
        received = loki.received
    whole = [number(line) for line in received if is_whole(line)]  # a cut line counts as missing
    unique = set(whole)
    missing = set(range(writer.written)) - unique
    line_bytes = writer.written_bytes // writer.written if writer.written else 0
    return OutageResult(
        seconds=seconds,
        written_lines=writer.written,
        written_bytes=writer.written_bytes,
        rotations=writer.rotations,
        deleted_lines=sum(hi - lo for lo, hi in writer.deleted),
        deleted=writer.deleted,
        deleted_bytes=writer.deleted_bytes,
        delivered_unique=len(unique),
        duplicates=len(whole) - len(unique),
        missing=missing,
        missing_bytes=len(missing) * line_bytes,
        metrics=metrics,
        catch_up_seconds=catch_up,
    )
