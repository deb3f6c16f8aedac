"""The log shipper scenarios shared by benchmarks/logs and benchmarks/lean: nodeagent and Debian's rsyslog
(imfile -> omfile) tailing the same CRI files, each pinned to one CPU with its state in a temporary directory.

Both run with their defaults: the configuration measured is the one shipped (nodeagent's ``batch_timeout``
of 1 s included, which is why :func:`throughput` reports the rate while the backlog lasts apart from the
end-to-end time that includes the last batch's linger).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._common import ROOT, cpu_seconds, free_port, rss_bytes

FILES = 4
_FRAME = re.compile(r"(.*) \((.*)\)")  # a py-spy frame: function (path:line)
BACKLOG_FRACTION = 0.99  # the backlog rate runs from the first byte appended to this share of the lines out
_TEXT = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco"
)
WORDS = _TEXT.split()

Starter = Callable[[Path, Path, Path], subprocess.Popen]  # (logs dir, output file, work dir) -> process


def iter_cri_lines(count: int, seed: int = 1, start: int = 0) -> Iterator[bytes]:
    """CRI lines of realistic length (about 170 bytes), stdout and stderr, a few partial pieces."""
    rnd = random.Random(seed)
    messages = [" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 30))) for _ in range(997)]
    for n in range(start, start + count):
        stream = "stderr" if n % 10 == 0 else "stdout"
        tag = "P" if n % 50 == 1 else "F"
        stamp = f"2026-11-27T10:{n // 60_000_000 % 60:02d}:{n // 1_000_000 % 60:02d}.{n % 1_000_000:06d}000Z"
        yield f"{stamp} {stream} {tag} req={n} {messages[n % 997]}\n".encode()


def cri_lines(count: int, seed: int = 1, start: int = 0) -> list[bytes]:
    return list(iter_cri_lines(count, seed, start))


def is_full_line(line: bytes) -> bool:
    """A CRI-aware shipper makes a record of an F line; a P piece joins the next line of its stream."""
    return b" F " in line[:45]


def records_for(lines: Sequence[bytes]) -> int:
    return sum(1 for line in lines if is_full_line(line))


@dataclass
class Backlog:
    """A data set split over :data:`FILES` files: the bytes per file, the lines, and the records each tool
    makes of them (nodeagent joins partial lines, rsyslog passes every line on)."""

    chunks: list[bytes]
    lines: int
    cri_records: int

    @classmethod
    def generate(cls, count: int) -> Backlog:
        parts: list[list[bytes]] = [[] for _ in range(FILES)]
        full = 0
        for n, line in enumerate(iter_cri_lines(count)):
            parts[n % FILES].append(line)
            full += is_full_line(line)
        return cls([b"".join(part) for part in parts], count, full)

    @property
    def bytes(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    def records(self, tool: Tool) -> int:
        return self.cri_records if tool.name.startswith("nodeagent") else self.lines


class OutputCounter:
    """Counts lines appended to a file, reading only what is new; remembers when each count was seen."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.lines = path, 0, 0
        self.timeline: list[tuple[float, int]] = []  # (monotonic time, lines), one entry per change

    def count(self) -> int:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return 0
        if data:
            self.offset += len(data)
            self.lines += data.count(b"\n")
            self.timeline.append((time.monotonic(), self.lines))
        return self.lines

    def first_reached(self, lines: int) -> float:
        return next(when for when, seen in self.timeline if seen >= lines)

    def wait_for(self, lines: int, timeout: float, proc: subprocess.Popen) -> float:
        deadline = time.monotonic() + timeout
        while self.count() < lines:
            if proc.poll() is not None:
                raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.lines} of {lines} lines in {self.path} after {timeout}s")
            time.sleep(0.005)
        return time.monotonic()


@dataclass
class Tool:
    name: str
    start: Starter
    results: dict[str, float] = field(default_factory=dict)


def pin(cpu: int) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, {cpu})


def wait_listening(port: int, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


def file_sink(out: Path, work: Path) -> tuple[str, list[subprocess.Popen]]:
    return f"{{type: file, path: {out}}}", []


def receiver_sink(module: str, config: str) -> Callable[[Path, Path], tuple[str, list[subprocess.Popen]]]:
    """A network sink whose receiver (benchmarks/<module>.py PORT OUT) writes a line per record to ``out``;
    ``config`` is the sink's YAML with ``{port}`` for the receiver's port."""

    def sink(out: Path, work: Path) -> tuple[str, list[subprocess.Popen]]:
        port = free_port()
        receiver = subprocess.Popen(
            [sys.executable, "-m", f"benchmarks.{module}", str(port), str(out)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(work / "receiver.stderr", "wb"),  # noqa: SIM115
        )
        wait_listening(port, receiver, f"the {module} receiver")
        return config.replace("{port}", str(port)), [receiver]

    return sink


def relp_sink(out: Path, work: Path) -> tuple[str, list[subprocess.Popen]]:
    """The relp sink to Debian's rsyslogd (imrelp -> omfile, one line per message) on a port of its own."""
    port = free_port()
    (work / "rsyslog-relp").mkdir()
    config = work / "rsyslog-relp.conf"
    config.write_text(f"""
global(workDirectory="{work / "rsyslog-relp"}")
module(load="imrelp")
input(type="imrelp" address="127.0.0.1" port="{port}")
template(name="msg" type="string" string="%msg%\\n")
action(type="omfile" file="{out}" template="msg")
""")
    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    rsyslog = subprocess.Popen(
        [binary, "-n", "-f", str(config), "-i", str(work / "rsyslog-relp.pid")],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "rsyslog-relp.stderr", "wb"),  # noqa: SIM115
    )
    wait_listening(port, rsyslog, "rsyslogd with imrelp")  # imrelp listens a moment after the start
    return f"{{type: relp, address: '127.0.0.1:{port}'}}", [rsyslog]


# nodeagent's sinks the benchmark can run: name -> (the sink's config, helper processes it needs).
SINKS: dict[str, Callable[[Path, Path], tuple[str, list[subprocess.Popen]]]] = {
    "file": file_sink,
    "elasticsearch": receiver_sink("_bulk_receiver", "{type: elasticsearch, url: 'http://127.0.0.1:{port}'}"),
    "otlp": receiver_sink("_otlp_receiver", "{type: otlp, endpoint: 'http://127.0.0.1:{port}'}"),
    "forward": receiver_sink("_forward_receiver", "{type: forward, address: '127.0.0.1:{port}'}"),
    "relp": relp_sink,
}


def start_nodeagent(
    cpu: int,
    sink: str = "file",
    disk_buffer: bool = False,
    metrics_argv: Sequence[str] | None = None,
    kubernetes: Callable[[Path], str] | None = None,
    root: Path = ROOT,
) -> Starter:
    """nodeagent with its default settings, shipping ``<logs>/*/*/*.log`` (CRI) to ``sink``.

    ``metrics_argv`` (collector switches) turns the metrics side on; the port is then ``proc.metrics_port``.
    ``kubernetes(work)`` returns the ``logs.kubernetes`` section's YAML (flow style) for pod metadata;
    ``root``: the checkout whose nodeagent runs (another one: a baseline in the same run)."""
    buffer = ", buffer: {type: disk}}" if disk_buffer else "}"

    def start(logs: Path, out: Path, work: Path) -> subprocess.Popen:
        sink_config, helpers = SINKS[sink](out, work)
        port = free_port()
        pods = f"  kubernetes: {kubernetes(work)}\n" if kubernetes else ""
        config = work / "nodeagent.yaml"
        config.write_text(f"""
web:
  listen-address: 127.0.0.1:{port}
logs:
  state_dir: {work / "state"}
{pods}  inputs:
    - name: bench
      paths: ["{logs}/*/*/*.log"]
      format: cri
  sinks:
    - {sink_config.removesuffix("}") + buffer}
""")
        env = {**os.environ, "PYTHONPATH": str(root)}
        metrics = ["--no-metrics"] if metrics_argv is None else list(metrics_argv)
        argv = [sys.executable, "-m", "nodeagent", "run", *metrics, "--config", str(config)]
        proc = subprocess.Popen(
            [*argv, "--node-name", "bench"],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "nodeagent.stderr", "wb"),  # noqa: SIM115
            env=env,
            cwd=root,  # `python -m` looks in the working directory first
            preexec_fn=pin(cpu),
        )
        proc.helpers = helpers  # type: ignore[attr-defined]  # stopped with it (Running.__exit__)
        proc.metrics_port = port  # type: ignore[attr-defined]
        return proc

    return start


def start_rsyslog(binary: str, cpu: int) -> Starter:
    def start(logs: Path, out: Path, work: Path) -> subprocess.Popen:
        (work / "rsyslog").mkdir()
        config = work / "rsyslog.conf"
        config.write_text(f"""
global(workDirectory="{work / "rsyslog"}")
module(load="imfile" mode="inotify")
input(type="imfile" File="{logs}/*/*/*.log" Tag="bench:" addMetadata="on")
template(name="jsonl" type="list" option.jsonf="on") {{
  property(outname="time" name="timegenerated" dateFormat="rfc3339" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
  property(outname="file" name="$!metadata!filename" format="jsonf")
  property(outname="node" name="hostname" format="jsonf")
}}
action(type="omfile" file="{out}" template="jsonl")
""")
        return subprocess.Popen(
            [binary, "-n", "-f", str(config), "-i", str(work / "rsyslog.pid")],
            stdout=subprocess.DEVNULL,
            stderr=open(work / "rsyslog.stderr", "wb"),
            preexec_fn=pin(cpu),
        )

    return start


def stop(procs: Sequence[subprocess.Popen]) -> None:
    """SIGTERM each process we started (by its PID), SIGKILL what has not exited after 15 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


class Running:
    """A tool running on a fresh directory tree; stopped by its PID on exit. ``before_start(logs, work)``
    may start helper processes the tool needs (returned: stopped after it)."""

    def __init__(
        self,
        tool: Tool,
        prepare: Callable[[Path], object],
        before_start: Callable[[Path, Path], list[subprocess.Popen]] | None = None,
    ) -> None:
        self.tool, self.prepare, self.before_start = tool, prepare, before_start

    def __enter__(self) -> Running:
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.tool.name}-"))
        self.logs, self.out = self.tmp / "logs", self.tmp / "out" / "records.jsonl"
        self.logs.mkdir()
        self.out.parent.mkdir()
        self.helpers: list[subprocess.Popen] = []
        try:
            self.prepare(self.logs)
            if self.before_start:
                self.helpers = self.before_start(self.logs, self.tmp)
            self.proc = self.tool.start(self.logs, self.out, self.tmp)
        except BaseException:
            stop(self.helpers)
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        self.counter = OutputCounter(self.out)
        return self

    def probe(self, expected_before: int = 0, timeout: float = 60) -> None:
        """Wait until the tool follows the files: a line appended now comes out."""
        probe = self.logs / pod_directory("probe", 999_999) / "app" / "0.log"
        probe.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        sent = 0
        while time.monotonic() < deadline:
            with open(probe, "ab") as handle:
                handle.write(f"2026-11-27T10:00:00.000000000Z stdout F probe {sent}\n".encode())
            sent += 1
            try:
                self.counter.wait_for(expected_before + 1, 1.0, self.proc)
            except RuntimeError:
                if self.proc.poll() is not None:
                    raise
                continue
            self.counter.wait_for(expected_before + sent, 5.0, self.proc)
            return
        raise RuntimeError(f"{self.tool.name} did not pick up new lines within {timeout}s")

    def __exit__(self, *exc: object) -> None:
        stop([self.proc, *getattr(self.proc, "helpers", []), *self.helpers])
        shutil.rmtree(self.tmp, ignore_errors=True)


def pod_directory(pod: str, index: int) -> str:
    """``<namespace>_<pod>_<uid>`` as the kubelet names it, so nodeagent reads the pod from the path."""
    return f"bench_{pod}_00000000-0000-4000-8000-{index:012d}"


def container_path(logs: Path, index: int) -> Path:
    return logs / pod_directory(f"pod{index}", index) / "app" / "0.log"


def container_files(logs: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = container_path(logs, i)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        paths.append(path)
    return paths


@contextlib.contextmanager
def sampled(pid: int, output: Path | None) -> Iterator[None]:
    """py-spy samples the Python stacks of ``pid`` (100 Hz, without stopping it) into ``output`` in collapsed
    form (``frame;frame;... count`` lines) while the block runs; nothing when ``output`` is None."""
    if output is None:
        yield
        return
    argv = ["py-spy", "record", "--pid", str(pid), "--rate", "100", "--nonblocking", "--function"]
    spy = subprocess.Popen(
        [*argv, "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)  # attached
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # writes the file and exits
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(timeout=10)


def throughput_backlog(tool: Tool, backlog: Backlog, profile: Path | None = None) -> dict[str, float]:
    """The backlog appended at once to files the tool already follows.

    ``MB/s`` and ``lines/s``: end to end, from the first byte appended to the last line out (for nodeagent
    this includes the last batch's linger, up to ``batch_timeout``); ``backlog MB/s``: while the backlog
    lasts, from the first byte to :data:`BACKLOG_FRACTION` of the lines out, over that share of the bytes."""
    records = backlog.records(tool)
    with Running(tool, lambda logs: container_files(logs, FILES)) as run:
        run.probe()
        before = run.counter.lines
        paths = [container_path(run.logs, i) for i in range(FILES)]
        with sampled(run.proc.pid, profile):
            cpu0, started = cpu_seconds(run.proc.pid), time.monotonic()
            for path, chunk in zip(paths, backlog.chunks, strict=True):
                with open(path, "ab") as handle:
                    handle.write(chunk)
            finished = run.counter.wait_for(before + records, 600, run.proc)
            cpu = cpu_seconds(run.proc.pid) - cpu0
        most = run.counter.first_reached(before + int(BACKLOG_FRACTION * records))
    seconds = finished - started
    results = {
        "lines/s": backlog.lines / seconds,
        "MB/s": backlog.bytes / seconds / 1e6,
        "backlog MB/s": BACKLOG_FRACTION * backlog.bytes / (most - started) / 1e6,
        "seconds": seconds,
        "CPU s per GB": cpu / (backlog.bytes / 1e9),
    }
    tool.results.update(results)
    return results


def throughput(tool: Tool, megabytes: float) -> dict[str, float]:
    return throughput_backlog(tool, Backlog.generate(int(megabytes * 1024 * 1024 / 170)))


def feed(
    run: Running, lines: Sequence[bytes], rate: int, each_second: Callable[[], object] | None = None
) -> float:
    """Append ``lines`` to the :data:`FILES` files at ``rate`` lines/s in 10 ms ticks; ``each_second`` is
    called about once a second. Returns the seconds it took."""
    paths = [container_path(run.logs, i) for i in range(FILES)]
    handles = [open(p, "ab", buffering=0) for p in paths]  # noqa: SIM115
    per_tick = max(1, int(rate * 0.01))
    started = time.monotonic()
    next_call = started + 1
    try:
        for n in range(0, len(lines), per_tick):
            for k, handle in enumerate(handles):
                part = lines[n + k : n + per_tick : FILES]
                if part:
                    handle.write(b"".join(part))
            now = time.monotonic()
            if each_second and now >= next_call:
                each_second()
                next_call += 1
            ahead = started + (n + per_tick) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    finally:
        for handle in handles:
            handle.close()
    return time.monotonic() - started


def steady(tool: Tool, rate: int, seconds: float, profile: Path | None = None) -> dict[str, float]:
    """``rate`` lines/s for ``seconds``: CPU (% of one core) and RSS at the end."""
    lines = cri_lines(int(rate * seconds), seed=2)
    records = records_for(lines) if tool.name.startswith("nodeagent") else len(lines)
    with Running(tool, lambda logs: container_files(logs, FILES)) as run:
        run.probe()
        before = run.counter.lines
        with sampled(run.proc.pid, profile):
            cpu0 = cpu_seconds(run.proc.pid)
            elapsed = feed(run, lines, rate)
            cpu = cpu_seconds(run.proc.pid) - cpu0
        rss = rss_bytes(run.proc.pid)
        run.counter.wait_for(before + records, 120, run.proc)
    results = {f"{rate} lines/s: CPU %": 100 * cpu / elapsed, f"{rate} lines/s: RSS MB": rss / 1e6}
    tool.results.update(results)
    return results


def idle(tool: Tool, files: int, seconds: float, profile: Path | None = None) -> dict[str, float]:
    """``files`` files read once, then quiet for ``seconds``: CPU, RSS and open descriptors."""

    def prepare(logs: Path) -> None:
        line = cri_lines(1, start=files)[0]
        for path in container_files(logs, files):
            path.write_bytes(line)

    with Running(tool, prepare) as run:
        run.counter.wait_for(files, 120 + files / 50, run.proc)  # every file read once
        run.probe(files)
        time.sleep(2)
        with sampled(run.proc.pid, profile):
            cpu0, started = cpu_seconds(run.proc.pid), time.monotonic()
            time.sleep(seconds)
            cpu = cpu_seconds(run.proc.pid) - cpu0
            elapsed = time.monotonic() - started
        fds = open_descriptors(run.proc.pid)
        rss = rss_bytes(run.proc.pid)
    results = {
        f"idle {files} files: CPU %": 100 * cpu / elapsed,
        f"idle {files} files: RSS MB": rss / 1e6,
        f"idle {files} files: open fds": len(fds),
        f"idle {files} files: open log files": sum(1 for target in fds if target.startswith(f"{run.logs}/")),
    }
    tool.results.update(results)
    return results


def open_descriptors(pid: int) -> list[str]:
    """What each open descriptor of ``pid`` points at (a path, ``socket:[...]``, ``anon_inode:...``)."""
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:  # closed meanwhile
            continue
    return targets


def hottest(collapsed: Path, count: int = 12) -> list[str]:
    """The functions a py-spy collapsed profile saw most (samples of every thread while it ran, not idle):
    share of samples in the function itself (self) and with it anywhere on the stack (total)."""
    own: dict[str, int] = {}
    anywhere: dict[str, int] = {}
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = [_FRAME.sub(lambda m: f"{m[1]} ({os.path.basename(m[2])})", f) for f in stack.split(";")]
        samples += int(number)
        own[frames[-1]] = own.get(frames[-1], 0) + int(number)
        for frame in set(frames):
            anywhere[frame] = anywhere.get(frame, 0) + int(number)
    if not samples:
        return ["no samples"]
    ranked = sorted(own, key=own.__getitem__, reverse=True)[:count]
    lines = [f"{samples} samples; self % / total %  function (file:line)"]
    lines += [f"{100 * own[f] / samples:5.1f} {100 * anywhere[f] / samples:6.1f}  {f}" for f in ranked]
    return lines


def split_cpus() -> int:
    """The CPU the tools run on; the driver (writers, counters, peers' helpers) moves to the others."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, set(cpus[1:]))
    return cpus[0]
