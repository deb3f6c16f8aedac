"""The systemd journal as a log input, read through ``journalctl`` as Vector does.

One ``journalctl --output=export --follow`` child per journald input, managed by asyncio (never blocking the
loop): its output is parsed incrementally (:class:`ExportParser`, pure, bounded), every entry becomes a
record (:func:`journal_record`), and the records go into the same :class:`~nodeagent.logs.pipeline.Pipeline`
as the files' in segments whose position is a :class:`~nodeagent.logs.checkpoint.JournalPosition`: the
cursor of the last entry the sinks acknowledged, committed with the file checkpoints. A restart passes that
cursor to ``--after-cursor``: nothing lost, at most the unacknowledged batch read again.

Why journalctl rather than a library: the journal file format (hash tables, compressed objects, entry
arrays, files rotated and vacuumed under a reader) is read correctly by systemd's own code, and the only
Python binding (``systemd-python``) is a C extension that needs libsystemd at build and run time. journalctl
runs in its own process: a corrupt journal file or a hostile field costs at most its own memory and a
restart, never the agent's loop. Costs in the README.

Bounds: the export format gives text fields as ``NAME=value\\n`` and binary ones as ``NAME\\n`` + 64-bit
little-endian length + bytes + ``\\n``. The parser keeps only the fields a record uses (:data:`KEPT_FIELDS`,
plus those ``exclude`` names), cuts ``MESSAGE`` at ``max_message_bytes`` and the others at
``max_field_bytes``, and skips everything else as it streams by, so a 100 MB ``MESSAGE`` costs one read
chunk of memory. Any bytes are survived: what does not parse is skipped up to the next newline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import struct
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nodeagent.config.logs import JournaldInputConfig
from nodeagent.logs import metrics
from nodeagent.logs.checkpoint import CheckpointStore, JournalPosition, Segment
from nodeagent.logs.encoding import rfc3339_ns
from nodeagent.logs.filters import FilterChain, Tally
from nodeagent.logs.pipeline import Pipeline
from nodeagent.logs.record import Records
from nodeagent.safeio import quote

log = logging.getLogger("nodeagent.logs.journald")

READ_CHUNK = 64 * 1024
MAX_NAME = 256  # longer "names" are garbage: journald allows 64 characters
STOP_GRACE = 2.0  # seconds between SIGTERM and SIGKILL for the child
HEALTHY_RUN = 60.0  # a child that ran this long resets the restart backoff
STDERR_KEEP = 512  # bytes of journalctl's stderr kept for the log line when it exits

# Journal field -> key in the record's ``journal`` mapping.
JOURNAL_KEYS = {
    "_SYSTEMD_UNIT": "unit",
    "_SYSTEMD_USER_UNIT": "user_unit",
    "SYSLOG_IDENTIFIER": "identifier",
    "SYSLOG_FACILITY": "facility",
    "_PID": "pid",
    "_UID": "uid",
    "_GID": "gid",
    "_COMM": "comm",
    "_EXE": "exe",
    "_CMDLINE": "cmdline",
    "_HOSTNAME": "hostname",
    "_TRANSPORT": "transport",
    "_BOOT_ID": "boot_id",
    "_MACHINE_ID": "machine_id",
    "CONTAINER_NAME": "container_name",
    "CONTAINER_ID": "container_id",
}
NUMERIC_KEYS = frozenset({"pid", "uid", "gid", "facility"})
KEPT_FIELDS = frozenset({"__CURSOR", "__REALTIME_TIMESTAMP", "MESSAGE", "PRIORITY", *JOURNAL_KEYS})
SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
FILE = "journal"  # the ``file`` of journal records


# ---------------------------------------------------------------------------------------------------
# The export format


@dataclass(slots=True)
class ExportEntry:
    """One journal entry: the fields kept (raw bytes, the first value of each), and whether any was cut."""

    fields: dict[str, bytes] = field(default_factory=dict)
    cut: bool = False
    nbytes: int = 0  # bytes of export format this entry took, for buffer accounting


class ExportParser:
    """Incremental parser of ``journalctl --output=export``: feed it any bytes, in any pieces.

    ``limit(name)`` says how many bytes of a field's value to keep (0: skip the field). Memory is bounded
    by the chunk fed plus the fields kept; nothing raises.
    """

    _LINE, _LENGTH, _BINARY, _BINARY_END, _TEXT, _SKIP_LINE = range(6)

    def __init__(self, limit: Callable[[str], int]) -> None:
        self._limit = limit
        self._buf = bytearray()
        self._state = self._LINE
        self._entry = ExportEntry()
        self._name = ""  # the field being read (binary or long text)
        self._wanted = False  # its value is kept
        self._keep = 0  # bytes of it still to keep
        self._value = bytearray()
        self._remaining = 0  # binary bytes still to come
        self.garbage = 0  # lines that were neither a field nor an entry's end

    def feed(self, data: bytes) -> list[ExportEntry]:
        self._buf += data
        entries: list[ExportEntry] = []
        buf = self._buf
        pos = 0
        while True:
            state = self._state
            if state == self._LINE:
                end = buf.find(b"\n", pos)
                if end < 0:
                    # A long text value: start it now rather than hold it whole.
                    eq = buf.find(b"=", pos, pos + MAX_NAME)
                    if eq >= 0:
                        self._start_field(bytes(buf[pos:eq]))
                        self._entry.nbytes += eq + 1 - pos
                        pos = eq + 1
                        self._state = self._TEXT
                        continue
                    if len(buf) - pos > MAX_NAME:
                        self.garbage += 1
                        self._state = self._SKIP_LINE
                        continue
                    break
                if end == pos:  # an empty line ends the entry
                    pos += 1
                    self._entry.nbytes += 1
                    if self._entry.fields or self._entry.nbytes > 1:
                        entries.append(self._entry)
                    self._entry = ExportEntry()
                    continue
                eq = buf.find(b"=", pos, end)
                if eq >= 0 and eq - pos <= MAX_NAME:
                    self._start_field(bytes(buf[pos:eq]))
                    self._take(buf, eq + 1, end)
                    self._finish_field()
                elif end - pos <= MAX_NAME:
                    self._start_field(bytes(buf[pos:end]))
                    self._state = self._LENGTH
                else:
                    self.garbage += 1
                self._entry.nbytes += end + 1 - pos
                pos = end + 1
            elif state == self._TEXT:
                end = buf.find(b"\n", pos)
                stop = len(buf) if end < 0 else end
                self._take(buf, pos, stop)
                self._entry.nbytes += stop - pos
                pos = stop
                if end < 0:
                    break
                pos += 1
                self._entry.nbytes += 1
                self._finish_field()
                self._state = self._LINE
            elif state == self._LENGTH:
                if len(buf) - pos < 8:
                    break
                (self._remaining,) = struct.unpack_from("<Q", buf, pos)
                pos += 8
                self._entry.nbytes += 8
                self._state = self._BINARY
            elif state == self._BINARY:
                take = min(self._remaining, len(buf) - pos)
                self._take(buf, pos, pos + take)
                pos += take
                self._remaining -= take
                self._entry.nbytes += take
                if self._remaining:
                    break
                self._finish_field()
                self._state = self._BINARY_END
            elif state == self._BINARY_END:
                if pos >= len(buf):
                    break
                if buf[pos] == 0x0A:
                    pos += 1
                    self._entry.nbytes += 1
                else:
                    self.garbage += 1  # not the newline a binary field ends with: read on as a line
                self._state = self._LINE
            else:  # _SKIP_LINE
                end = buf.find(b"\n", pos)
                if end < 0:
                    self._entry.nbytes += len(buf) - pos
                    pos = len(buf)
                    break
                self._entry.nbytes += end + 1 - pos
                pos = end + 1
                self._state = self._LINE
        del buf[:pos]
        return entries

    def _start_field(self, name: bytes) -> None:
        self._name = name.decode("ascii", "replace")
        limit = self._limit(self._name)
        self._wanted = limit > 0 and self._name not in self._entry.fields  # the first value only
        self._keep = limit if self._wanted else 0
        self._value.clear()

    def _take(self, buf: bytearray, start: int, stop: int) -> None:
        if not self._wanted or stop <= start:
            return
        count = min(stop - start, self._keep)
        if count:
            self._value += buf[start : start + count]
            self._keep -= count
        if stop - start > count:
            self._entry.cut = True

    def _finish_field(self) -> None:
        if self._wanted:
            self._entry.fields[self._name] = bytes(self._value)
        self._wanted = False
        self._value.clear()


def encode_export(fields: Iterable[tuple[str, bytes]]) -> bytes:
    """One entry in the export format (text where it can be, binary otherwise); for tests and fixtures."""
    out = bytearray()
    for name, value in fields:
        if b"\n" in value or any(byte < 0x20 and byte != 0x09 for byte in value):
            out += name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
        else:
            out += name.encode() + b"=" + value + b"\n"
    return bytes(out + b"\n")


# ---------------------------------------------------------------------------------------------------
# Journal entries as records


@dataclass(slots=True)
class JournalFields:
    """What a record takes from one entry; ``journal`` goes into the record's ``fields`` as
    ``{"journal": {...}}`` (written at the top level of the record's JSON, beside ``kubernetes``)."""

    time: str
    message: str
    stream: str | None
    journal: dict[str, Any]


def journal_record(entry: dict[str, bytes], read_time_ns: int | None = None) -> JournalFields:
    """A journal entry as record fields: the one place that maps journal fields (pure).

    message: MESSAGE (invalid UTF-8 replaced); time: __REALTIME_TIMESTAMP (else the read time); stream:
    ``stderr`` for PRIORITY 0-3 (emerg..err, what the syslog sink maps to severity error), else ``stdout``
    (None without PRIORITY); ``journal``: the fields of :data:`JOURNAL_KEYS` that are present, with
    ``priority`` and ``severity`` (name).
    """
    message = entry.get("MESSAGE", b"").decode("utf-8", "replace")
    micros = _number(entry.get("__REALTIME_TIMESTAMP"))
    if micros is None or micros > 2**62 // 1000:
        micros = None
    time_ns = micros * 1000 if micros is not None else (read_time_ns or time.time_ns())
    journal: dict[str, Any] = {}
    priority = _number(entry.get("PRIORITY"))
    stream = None
    if priority is not None and priority < len(SEVERITIES):
        journal["priority"] = priority
        journal["severity"] = SEVERITIES[priority]
        stream = "stderr" if priority <= 3 else "stdout"
    for name, key in JOURNAL_KEYS.items():
        raw = entry.get(name)
        if raw is None:
            continue
        if key in NUMERIC_KEYS:
            number = _number(raw)
            journal[key] = number if number is not None else raw.decode("utf-8", "replace")
        else:
            journal[key] = raw.decode("utf-8", "replace")
    return JournalFields(rfc3339_ns(time_ns), message, stream, journal)


def _number(raw: bytes | None) -> int | None:
    if raw is None or not 0 < len(raw) <= 20 or not raw.isdigit():
        return None
    return int(raw)


# ---------------------------------------------------------------------------------------------------
# journalctl


def journalctl_command(config: JournaldInputConfig, *, after_cursor: str | None) -> list[str]:
    """The follow command: from after ``after_cursor``, or from the start of the journal."""
    # --no-tail always: with --follow, journalctl otherwise starts 10 entries before the end, even after
    # a cursor.
    command = [
        config.journalctl,
        *_selection(config),
        "--output=export",
        "--no-pager",
        "--follow",
        "--no-tail",
    ]
    if after_cursor:
        command.append(f"--after-cursor={after_cursor}")
    return command + _matches(config)


def last_entry_command(config: JournaldInputConfig) -> list[str]:
    """The command that prints the newest matching entry (the tail at a first start)."""
    selection = _selection(config)
    return [config.journalctl, *selection, "--output=export", "--no-pager", "--lines=1", *_matches(config)]


def _selection(config: JournaldInputConfig) -> list[str]:
    if config.directory is not None:
        return [f"--directory={_below_root(config.rootfs, config.directory)}"]
    # journald's own layout below the root: <root>/var/log/journal and <root>/run/log/journal, with
    # their machine-id subdirectories.
    return [f"--root={config.rootfs}"]


def _below_root(rootfs: str, path: str) -> str:
    if rootfs.rstrip("/") == "":
        return path
    return rootfs.rstrip("/") + "/" + path.lstrip("/")


def _matches(config: JournaldInputConfig) -> list[str]:
    # Values of one field are ORed, different fields ANDed (journalctl's rules for FIELD=VALUE arguments).
    matches = [f"_SYSTEMD_UNIT={unit}" for unit in config.units]
    for name, values in config.include:
        matches += [f"{name}={value}" for value in values]
    return matches


class JournalSource:
    """One journald input: runs journalctl, restarts it with backoff, and feeds the pipeline."""

    def __init__(
        self,
        config: JournaldInputConfig,
        store: CheckpointStore,
        pipeline: Pipeline,
        node: str,
    ) -> None:
        self.config = config
        self.store = store
        self.pipeline = pipeline
        self.node = node
        self.position: JournalPosition = store.journal_position(config.name)
        self.read_cursor = self.position.cursor  # of the last entry read: where a restarted child resumes
        self.exclude = {name: frozenset(v.encode() for v in values) for name, values in config.exclude}
        self._kept = KEPT_FIELDS | set(self.exclude)
        self.filters = FilterChain(config.filters)
        self.process: asyncio.subprocess.Process | None = None
        self._stop = asyncio.Event()  # run()'s
        self._stderr = bytearray()
        name = config.name
        self._records = metrics.LINES_READ.labels(name)
        self._bytes = metrics.BYTES_READ.labels(name)
        self._cut = metrics.LINES_TRUNCATED.labels(name)
        self._garbage = metrics.PARSE_FAILURES.labels(name)
        self._restarts = metrics.JOURNALCTL_RESTARTS.labels(name)
        self._skipped = metrics.JOURNAL_ENTRIES_EXCLUDED.labels(name)

    def field_limit(self, name: str) -> int:
        if name == "MESSAGE":
            return self.config.max_message_bytes
        return self.config.max_field_bytes if name in self._kept else 0

    async def run(self, stop: asyncio.Event) -> None:
        """Read until ``stop``; journalctl is run again (with backoff) whenever it exits."""
        self._stop = stop
        backoff = self.config.restart_backoff
        while not stop.is_set():
            started = time.monotonic()
            try:
                if self.read_cursor is None and self.config.read_from == "tail":
                    await self._find_tail(stop)
                if not stop.is_set():
                    await self._follow(stop)
            except OSError as exc:
                log.error(
                    "cannot run journalctl",
                    extra={"input": self.config.name, "command": self.config.journalctl, "err": str(exc)},
                )
            if stop.is_set():
                break
            if time.monotonic() - started >= HEALTHY_RUN:
                backoff = self.config.restart_backoff
            self._restarts.inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, self.config.restart_max_backoff)

    async def _find_tail(self, stop: asyncio.Event) -> None:
        """First start at the tail: the newest entry's cursor becomes the position (committed at once)."""
        parser = ExportParser(lambda name: self.config.max_field_bytes if name == "__CURSOR" else 0)
        cursor = None
        async with contextlib.aclosing(self._output(last_entry_command(self.config), stop)) as chunks:
            async for chunk in chunks:
                for entry in parser.feed(chunk):
                    cursor = entry.fields.get("__CURSOR") or cursor
        if stop.is_set() or self.process is None or self.process.returncode != 0:
            if self.process is not None and self.process.returncode:
                raise OSError(f"journalctl exited with {self.process.returncode}: {self._stderr_text()}")
            return
        if cursor is None:  # an empty journal: the start is the tail
            self.read_cursor = ""
            return
        self.read_cursor = cursor.decode("utf-8", "replace")
        self.store.pass_journal_entry(self.position, self.read_cursor)
        log.info("journal input starts at the tail", extra={"input": self.config.name})

    async def _follow(self, stop: asyncio.Event) -> None:
        parser = ExportParser(self.field_limit)
        after = self.read_cursor or None
        command = journalctl_command(self.config, after_cursor=after)
        entries_read = 0
        async with contextlib.aclosing(self._output(command, stop)) as chunks:
            async for chunk in chunks:
                entries = parser.feed(chunk)
                if parser.garbage:
                    self._garbage.inc(parser.garbage)
                    parser.garbage = 0
                if entries:
                    entries_read += len(entries)
                    await self._ship(entries)
        process = self.process
        if process is None or stop.is_set():
            return
        stderr = self._stderr_text()
        log.warning(
            "journalctl exited; running it again",
            extra={"input": self.config.name, "code": process.returncode, "stderr": stderr},
        )
        if after and not entries_read and process.returncode and "cursor" in stderr.lower():
            # A cursor journalctl refuses (a damaged state file): start over as on a first start.
            log.error("journalctl refuses the saved cursor; it is dropped", extra={"input": self.config.name})
            self.read_cursor = None

    async def _ship(self, entries: list[ExportEntry]) -> None:
        read_ns = time.time_ns()
        times: list[str] = []
        messages: list[str] = []
        streams: list[str | None] = []
        fields: list[dict[str, Any] | None] = []
        # Each entry's cursor, with the index of its record among the candidates (None: excluded).
        order: list[tuple[str, int | None]] = []
        nbytes = 0
        cut = 0
        for entry in entries:
            raw_cursor = entry.fields.get("__CURSOR")
            if raw_cursor is None:  # journalctl always writes one; without it there is no position
                self._garbage.inc()
                continue
            cursor = raw_cursor.decode("utf-8", "replace")
            self.read_cursor = cursor
            if self._excluded(entry.fields):
                self._skipped.inc()
                order.append((cursor, None))
                continue
            mapped = journal_record(entry.fields, read_ns)
            order.append((cursor, len(messages)))
            times.append(mapped.time)
            messages.append(mapped.message)
            streams.append(mapped.stream)
            fields.append({"journal": mapped.journal})
            nbytes += entry.nbytes
            cut += entry.cut
        if cut:
            self._cut.inc(cut)
        self._records.inc(len(messages))
        self._bytes.inc(nbytes)
        records = Records(times, messages, streams, FILE, self.node, None, fields)
        kept: set[int] | None = None
        if self.filters and messages:
            tally = Tally()
            records, kept_list = self.filters.apply_records(records, tally)
            kept = set(kept_list)
            metrics.FILTER_DROPPED.labels("input", self.config.name).inc(tally.dropped)
            metrics.FILTER_FAILURES.labels("input", self.config.name).inc(tally.failures)
        # Positions in journal order: a record shipped gets a number its acknowledgement commits; an entry
        # not shipped (excluded, filtered out) is passed by the acknowledgement of the record before it.
        position = self.position
        offsets: list[int] = []
        for cursor, index in order:
            if index is not None and (kept is None or index in kept):
                offsets.append(position.read(cursor))
            else:
                self.store.pass_journal_entry(position, cursor)
        if not offsets:
            return
        # The buffer counts what is held: the kept fields, not what journalctl wrote and was skipped.
        held = sum(len(m) for m in records.messages) + 200 * len(offsets)
        if await self._wait_for_space():
            self.pipeline.put(Segment(position, records, offsets, held))

    async def _wait_for_space(self) -> bool:
        """Backpressure: wait until the buffer has room; False when stopping first (the records are not
        put: unacknowledged, they are read again at the next start)."""
        pipeline = self.pipeline
        if pipeline.buffered_bytes < pipeline.config.buffer_max_bytes:
            return True
        space = asyncio.ensure_future(pipeline.wait_for_space())
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({space, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            space.cancel()
            stopped.cancel()
        return not self._stop.is_set()

    def _excluded(self, fields: dict[str, bytes]) -> bool:
        return any(fields.get(name) in values for name, values in self.exclude.items())

    async def _output(self, command: list[str], stop: asyncio.Event) -> AsyncGenerator[bytes]:
        """Chunks of the command's stdout until it ends or ``stop``; the child is stopped by PID after."""
        self._stderr.clear()
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self.process = process
        assert process.stdout is not None and process.stderr is not None
        stderr = asyncio.create_task(self._drain_stderr(process.stderr))
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while True:
                reading = asyncio.ensure_future(process.stdout.read(READ_CHUNK))
                await asyncio.wait({reading, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    reading.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reading
                    return
                chunk = reading.result()
                if not chunk:
                    break
                yield chunk
            await process.wait()
        finally:
            stopped.cancel()
            await self._stop_child(process)
            stderr.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stderr

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(READ_CHUNK):
            self._stderr += chunk
            del self._stderr[:-STDERR_KEEP]

    def _stderr_text(self) -> str:
        return quote(bytes(self._stderr).strip()) if self._stderr.strip() else ""

    @staticmethod
    async def _stop_child(process: asyncio.subprocess.Process) -> None:
        """SIGTERM to the child's PID, SIGKILL after a grace period; then reap it."""
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                await process.wait()


async def run_journals(
    configs: Iterable[JournaldInputConfig],
    store: CheckpointStore,
    pipeline: Pipeline,
    node: str,
    stop: asyncio.Event,
) -> None:
    """Run every journald input until ``stop``."""
    sources = [JournalSource(config, store, pipeline, node) for config in configs]
    async with asyncio.TaskGroup() as group:
        for source in sources:
            group.create_task(source.run(stop), name=f"logs-journal-{source.config.name}")
