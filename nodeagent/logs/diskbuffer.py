"""A sink's disk buffer: an on-disk queue between the pipeline and the destination, for outages longer
than memory (``buffer: {type: disk}`` on a sink).

:class:`DiskBufferedSink` wraps a sink. The pipeline's ``send`` to it returns once the batch is appended
to the queue and fsynced, so the input checkpoint may advance past records that are durable in the
buffer. Its own sender task reads the queue in order and delivers each batch to the real sink with the
pipeline's retry policy (:class:`~nodeagent.logs.pipeline.Delivery`), flushes the sink, and only then
acknowledges the batch in the queue. When the queue is full (``max_size``), ``when_full: block`` makes
the pipeline wait (backpressure: reading stops, as without a disk buffer) and ``drop_newest`` drops the
batch, counted in ``nodeagent_logs_records_dropped_total{reason="buffer_full"}``.

:class:`DiskQueue` is the queue, all blocking (run in the shipper's pool). Under
``<state_dir>/buffers/<sink>/``: segment files ``<n>.seg`` of frames (magic, CRC32, length, record count,
append time, payload: one batch as columns, see :func:`encode_batch`) and a ``position`` file holding the
first unacknowledged byte in two alternating CRC-checked slots (a torn write leaves the other slot, one
batch behind). A frame that is torn or corrupted (bad magic, length or CRC) is skipped up to the next
valid frame and counted; a segment is deleted once acknowledged past. After a SIGKILL the queue resumes
at the saved position: nothing acknowledged is lost, at most the one batch in flight is delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote as url_quote

from nodeagent.config.logs import BufferConfig, LogsConfig, SinkSpec
from nodeagent.config.schema import Section
from nodeagent.logs import metrics
from nodeagent.logs.blocking import DEFAULT, Blocking
from nodeagent.logs.durable import fsync_directory, write_all
from nodeagent.logs.encoding import as_runs
from nodeagent.logs.pipeline import Delivery
from nodeagent.logs.record import Record, RecordBatch, Records
from nodeagent.logs.sinks.base import RetryableSinkError, Sink

log = logging.getLogger("nodeagent.logs.diskbuffer")

MAGIC = b"NAQ1"
# magic, CRC32 (of the rest of the header and the payload), payload length, records, appended at (ns)
HEADER = struct.Struct("<4sIIIq")
# generation, segment, offset, CRC32 of the three
SLOT = struct.Struct("<QQQI")
SLOT_SIZE = 512  # one slot per sector: writing one never tears the other
SEGMENT_SUFFIX = ".seg"
POSITION_FILE = "position"
MAX_SEGMENT_BYTES = 64 * 1024 * 1024
IDLE_TICK = 1.0
_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------------
# Payload: one batch as the columns of its Records runs


_SEPARATORS = ("\x1e", "\x1f", "\ue000", "\ufdd0")  # for joining a column of strings; rare in logs


def encode_batch(records: Sequence[Record]) -> bytes:
    """A batch as the columns of its :class:`Records` runs (every slot, by name), in two parts.

    A JSON header (one line) lists the runs; each column that is a list of strings (times, messages, ...)
    is joined with a separator it does not contain and stored after the header, as UTF-8, since
    escaping each string for JSON costs more than the rest of the disk buffer together; other values
    (shared fields, lists holding other things) stay in the header. Every slot is written, so a column
    added to Records (and its constructor, whose parameters are named like the slots) survives the disk
    without a change here; ``surrogatepass`` keeps a lone surrogate as it was.
    """
    header: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for run in as_runs(records):
        columns: dict[str, Any] = {}
        packed: dict[str, list[Any]] = {}
        for name in Records.__slots__:
            value = getattr(run, name)
            joined = _join_strings(value) if isinstance(value, list) and value else None
            if joined is None:
                columns[name] = value
            else:
                blob = joined[1].encode("utf-8", "surrogatepass")
                packed[name] = [len(blob), joined[0], len(value)]
                blobs.append(blob)
        header.append({"columns": columns, "packed": packed})
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return b"".join([head, b"\n", *blobs])


def _join_strings(values: list[Any]) -> tuple[str, str] | None:
    """(separator, the strings joined with it) when all are strings and one separator is in none."""
    for separator in _SEPARATORS:
        try:
            joined = separator.join(values)
        except TypeError:
            return None
        if joined.count(separator) == len(values) - 1:
            return separator, joined
    return None


def decode_batch(payload: bytes) -> RecordBatch:
    """The batch :func:`encode_batch` wrote; ValueError if the payload is not one."""
    head, newline, body = payload.partition(b"\n")
    try:
        header = json.loads(head.decode("utf-8", "surrogatepass"))
        if not newline or not isinstance(header, list):
            raise ValueError("no header")
        runs = []
        at = 0
        for run in header:
            columns, packed = run["columns"], run["packed"]
            for name, (nbytes, separator, count) in packed.items():
                text = body[at : at + nbytes].decode("utf-8", "surrogatepass")
                at += nbytes
                columns[name] = text.split(separator)
                if len(columns[name]) != count:
                    raise ValueError("a column has the wrong length")
            runs.append(Records(**columns))
        if at != len(body):
            raise ValueError("bytes left over")
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a buffered batch: {exc}") from None
    for run in runs:
        lists = [getattr(run, name) for name in ("times", "messages", "streams")]
        if not all(isinstance(column, list) and len(column) == len(run.messages) for column in lists):
            raise ValueError("not a buffered batch: columns are not lists of one length")
    return RecordBatch(runs)


# ---------------------------------------------------------------------------------------------------
# The queue


@dataclass(slots=True)
class Frame:
    """One batch read from the queue; acknowledging it moves the saved position to ``end``."""

    records: RecordBatch
    count: int
    appended_ns: int
    end: tuple[int, int]  # (segment, offset) just after the frame
    replayed: bool  # written before this start of the agent


def _frame_crc(header_tail: bytes, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(header_tail))


class DiskQueue:
    """Frames in segment files, appended by one caller and read and acknowledged by another (each call
    blocking; the two sides may run in different threads). Bounded: an append that would make the
    segment files larger than ``max_size`` bytes is refused (returns False)."""

    def __init__(
        self,
        directory: Path,
        max_size: int,
        on_corrupt: Callable[[int], None] | None = None,
    ) -> None:
        self.directory = directory
        self.max_size = max_size
        self.segment_bytes = max(4096, min(MAX_SEGMENT_BYTES, max_size // 8))
        self.frame_limit = max(HEADER.size + 1, max_size // 4)  # larger batches are split by the caller
        self.on_corrupt = on_corrupt
        self._lock = threading.Lock()  # the shared state
        # Held for each side's file I/O, and both by close(): a call still running in a worker thread when
        # the sink is closed must not write through a descriptor number that was closed and reused.
        self._append_io = threading.Lock()
        self._read_io = threading.Lock()
        self.closed = False
        self.sizes: dict[int, int] = {}  # segment -> bytes (the write segment: what is fsynced)
        self.used_bytes = 0
        self.pending_records = 0
        self.head_ns: int | None = None  # append time of the oldest unacknowledged frame (about)
        self.first_new_segment = 1
        self._write_id: int | None = None
        self._write_fd: int | None = None
        self._read_pos = (0, 0)
        self._read_fd: tuple[int, int] | None = None  # (segment, fd)
        self._position_fd: int | None = None
        self._generation = 0

    # -- opening ------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: Path, max_size: int, on_corrupt: Callable[[int], None] | None = None
    ) -> DiskQueue:
        queue = cls(directory, max_size, on_corrupt)
        queue._open()
        return queue

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        segments = []
        for name in os.listdir(self.directory):
            stem, _, suffix = name.partition(".")
            if "." + suffix == SEGMENT_SUFFIX and stem.isdigit():
                segments.append(int(stem))
        segments.sort()
        self._position_fd = os.open(
            self.directory / POSITION_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        saved = self._read_position()
        start = saved if saved is not None else ((segments[0], 0) if segments else (0, 0))
        for segment in segments:
            path = self._path(segment)
            size = os.stat(path).st_size
            if segment < start[0] or size == 0:  # acknowledged, or never written to
                path.unlink()
            else:
                self.sizes[segment] = size
        if self.sizes and start[0] not in self.sizes:
            start = (min(self.sizes), 0)  # the saved segment was acknowledged past (or emptied)
        self._read_pos = start
        self.used_bytes = sum(self.sizes.values())
        self.first_new_segment = max(segments, default=0) + 1
        self.pending_records, self.head_ns = self._count_from(start)

    def _count_from(self, start: tuple[int, int]) -> tuple[int, int | None]:
        """Records in the frames from ``start`` on, by their headers (CRCs are checked when read)."""
        records, head = 0, None
        for segment in sorted(self.sizes):
            offset = start[1] if segment == start[0] else 0
            size = self.sizes[segment]
            fd = os.open(self._path(segment), os.O_RDONLY | os.O_CLOEXEC)
            try:
                while offset + HEADER.size <= size:
                    magic, _crc, length, count, appended = HEADER.unpack(os.pread(fd, HEADER.size, offset))
                    if magic != MAGIC or offset + HEADER.size + length > size:
                        break  # corrupted: what lies beyond is counted when it is read
                    records += count
                    head = appended if head is None else head
                    offset += HEADER.size + length
            finally:
                os.close(fd)
        return records, head

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{SEGMENT_SUFFIX}"

    # -- the saved position -------------------------------------------------------------------------

    def _read_position(self) -> tuple[int, int] | None:
        assert self._position_fd is not None
        best: tuple[int, int, int] | None = None
        for slot in range(2):
            data = os.pread(self._position_fd, SLOT.size, slot * SLOT_SIZE)
            if len(data) < SLOT.size:
                continue
            generation, segment, offset, crc = SLOT.unpack(data)
            if zlib.crc32(data[: SLOT.size - 4]) != crc:
                continue
            if best is None or generation > best[0]:
                best = (generation, segment, offset)
        if best is None:
            return None
        self._generation = best[0]
        return best[1], best[2]

    def _save_position(self, segment: int, offset: int) -> None:
        assert self._position_fd is not None
        self._generation += 1
        body = SLOT.pack(self._generation, segment, offset, 0)[: SLOT.size - 4]
        slot = body + zlib.crc32(body).to_bytes(4, "little")
        write_all(self._position_fd, slot, (self._generation % 2) * SLOT_SIZE)
        os.fdatasync(self._position_fd)

    # -- appending ----------------------------------------------------------------------------------

    def append(self, payload: bytes, count: int, appended_ns: int | None = None) -> bool:
        """Write one frame and fsync it; False (nothing written) when it would exceed ``max_size``."""
        with self._append_io:
            self._check_open()
            return self._append(payload, count, appended_ns)

    def _check_open(self) -> None:
        if self.closed:
            raise OSError("the disk buffer is closed")

    def _append(self, payload: bytes, count: int, appended_ns: int | None) -> bool:
        appended_ns = time.time_ns() if appended_ns is None else appended_ns
        tail = HEADER.pack(MAGIC, 0, len(payload), count, appended_ns)[8:]
        frame_bytes = HEADER.size + len(payload)
        with self._lock:
            if self.used_bytes + frame_bytes > self.max_size:
                return False
        if self._write_fd is None or self.sizes[self._write_id or 0] >= self.segment_bytes:
            self._new_segment()
        assert self._write_fd is not None and self._write_id is not None
        header = MAGIC + _frame_crc(tail, payload).to_bytes(4, "little") + tail
        size = self.sizes[self._write_id]
        try:
            write_all(self._write_fd, header + payload)
            os.fdatasync(self._write_fd)
        except OSError:
            # A partial frame stays in the file: cut it off, or the next frames would follow garbage.
            with contextlib.suppress(OSError):
                os.ftruncate(self._write_fd, size)
                os.lseek(self._write_fd, size, os.SEEK_SET)
            raise
        with self._lock:
            self.sizes[self._write_id] = size + frame_bytes
            self.used_bytes += frame_bytes
            if self.pending_records == 0:
                self.head_ns = appended_ns
            self.pending_records += count
        return True

    def _new_segment(self) -> None:
        segment = max(self.first_new_segment, max(self.sizes, default=0) + 1)
        fd = os.open(
            self._path(segment), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600
        )
        fsync_directory(self.directory)
        old = self._write_fd
        with self._lock:
            self.sizes[segment] = 0
            self._write_id, self._write_fd = segment, fd
        if old is not None:
            os.close(old)

    # -- reading and acknowledging ------------------------------------------------------------------

    def read_next(self) -> Frame | None:
        """The next frame after those already read (not necessarily acknowledged); None at the end."""
        with self._read_io:
            self._check_open()
            return self._read_next()

    def _read_next(self) -> Frame | None:
        while True:
            segment, offset = self._read_pos
            with self._lock:
                end = self.sizes.get(segment)
                finished = segment != self._write_id
                later = [s for s in self.sizes if s > segment]
            if end is None or offset >= end:
                if not finished and end is not None:
                    return None  # caught up with the writer
                if not later:
                    return None
                self._read_pos = (min(later), 0)
                continue
            fd = self._reader_fd(segment)
            frame = self._frame_at(fd, segment, offset, end)
            if frame is not None:
                self._read_pos = frame.end
                return frame
            skip_to = self._next_valid(fd, segment, offset, end)
            if self.on_corrupt is not None:
                self.on_corrupt(skip_to - offset)
            log.warning(
                "skipping a corrupted or torn stretch of the disk buffer",
                extra={"path": str(self._path(segment)), "offset": offset, "bytes": skip_to - offset},
            )
            self._read_pos = (segment, skip_to)

    def _reader_fd(self, segment: int) -> int:
        if self._read_fd is not None and self._read_fd[0] == segment:
            return self._read_fd[1]
        self._close_reader()
        fd = os.open(self._path(segment), os.O_RDONLY | os.O_CLOEXEC)
        self._read_fd = (segment, fd)
        return fd

    def _close_reader(self) -> None:
        if self._read_fd is not None:
            os.close(self._read_fd[1])
            self._read_fd = None

    def _frame_at(self, fd: int, segment: int, offset: int, end: int) -> Frame | None:
        header = os.pread(fd, HEADER.size, offset)
        if len(header) < HEADER.size:
            return None
        magic, crc, length, count, appended = HEADER.unpack(header)
        if magic != MAGIC or offset + HEADER.size + length > end:
            return None
        payload = os.pread(fd, length, offset + HEADER.size)
        if len(payload) < length or _frame_crc(header[8:], payload) != crc:
            return None
        try:
            records = decode_batch(payload)
        except ValueError:
            return None
        if len(records) != count:
            return None
        replayed = segment < self.first_new_segment
        return Frame(records, count, appended, (segment, offset + HEADER.size + length), replayed)

    def _next_valid(self, fd: int, segment: int, offset: int, end: int) -> int:
        """Where the next valid frame after a bad one at ``offset`` starts (``end`` if none does)."""
        data = os.pread(fd, end - offset, offset)
        at = data.find(MAGIC, 1)
        while at != -1:
            if self._frame_at(fd, segment, offset + at, end) is not None:
                return offset + at
            at = data.find(MAGIC, at + 1)
        return end

    def acknowledge(self, frame: Frame) -> None:
        """The frame is delivered: save the position after it, delete segments read to their end."""
        with self._read_io:
            self._check_open()
            self._acknowledge(frame)

    def _acknowledge(self, frame: Frame) -> None:
        segment, offset = frame.end
        self._save_position(segment, offset)
        with self._lock:
            done = [s for s in self.sizes if s < segment]
            self.pending_records = max(0, self.pending_records - frame.count)
            if not self.pending_records:
                self.head_ns = None
        for old in done:
            self._path(old).unlink(missing_ok=True)
            with self._lock:
                self.used_bytes -= self.sizes.pop(old)

    def note_head(self, frame: Frame) -> None:
        with self._lock:
            self.head_ns = frame.appended_ns

    def close(self) -> None:
        with self._append_io, self._read_io:
            self.closed = True
            self._close_files()

    def _close_files(self) -> None:
        self._close_reader()
        for fd in (self._write_fd, self._position_fd):
            if fd is not None:
                os.close(fd)
        self._write_fd = self._position_fd = None


# ---------------------------------------------------------------------------------------------------
# The sink wrapper


def buffer_directory(state_dir: Path, sink_name: str) -> Path:
    """``<state_dir>/buffers/<sink name>`` (the name %-escaped: no ``/``, no ``.``)."""
    return state_dir / "buffers" / url_quote(sink_name, safe="-_").replace(".", "%2E")


def buffered(sink: Sink, spec: SinkSpec, config: LogsConfig) -> Sink:
    """The sink, behind a disk buffer when its ``buffer`` says so."""
    if spec.buffer.type != "disk":
        return sink
    return DiskBufferedSink(sink, buffer_directory(config.state_dir, spec.name), spec.buffer, config)


class DiskBufferedSink(Sink):
    """A sink behind a :class:`DiskQueue` (see the module's description)."""

    type = "disk_buffer"
    option_schema = Section(())
    buffering = True

    def __init__(self, inner: Sink, directory: Path, buffer: BufferConfig, config: LogsConfig) -> None:
        super().__init__(inner.name, {})
        self.inner = inner
        self.directory = directory
        self.buffer = buffer
        self.queue: DiskQueue | None = None
        self._blocking = DEFAULT
        self._data = asyncio.Event()  # something was appended
        self._space = asyncio.Event()  # something was acknowledged
        self._stopping = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._delivery = Delivery(config, self._bounded, self._sleep)
        self._close_grace = config.drain_timeout

    @property
    def blocking(self) -> Blocking:
        return self._blocking

    @blocking.setter
    def blocking(self, value: Blocking) -> None:
        self._blocking = value
        self.inner.blocking = value

    async def start(self) -> None:
        if self.queue is None:
            try:
                self.queue = await self.blocking(
                    DiskQueue.open, self.directory, self.buffer.max_size, self._count_corrupt
                )
            except OSError as exc:
                raise RetryableSinkError(f"cannot open the disk buffer {self.directory}: {exc}") from exc
            self._watch(self.queue)
            if self.queue.pending_records:
                log.info(
                    "replaying the disk buffer",
                    extra={"sink": self.name, "records": self.queue.pending_records},
                )
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_loop(), name=f"logs-buffer-{self.name}")

    def _watch(self, queue: DiskQueue) -> None:
        name = self.name
        metrics.DISK_BUFFER_BYTES.labels(name).set_function(lambda: queue.used_bytes)
        metrics.DISK_BUFFER_RECORDS.labels(name).set_function(lambda: queue.pending_records)
        metrics.DISK_BUFFER_OLDEST_AGE.labels(name).set_function(
            lambda: 0.0 if queue.head_ns is None else max(0.0, (time.time_ns() - queue.head_ns) / 1e9)
        )
        metrics.DISK_BUFFER_REPLAYED.labels(name)
        metrics.DISK_BUFFER_CORRUPTED.labels(name)
        metrics.DISK_BUFFER_CORRUPTED_BYTES.labels(name)
        metrics.RECORDS_DROPPED.labels(name, "buffer_full")

    def _count_corrupt(self, nbytes: int) -> None:
        metrics.DISK_BUFFER_CORRUPTED.labels(self.name).inc()
        metrics.DISK_BUFFER_CORRUPTED_BYTES.labels(self.name).inc(nbytes)

    # -- the pipeline's side ------------------------------------------------------------------------

    async def send(self, batch: Sequence[Record]) -> None:
        """Append the batch to the queue, durably; when full, wait (block) or drop it (drop_newest)."""
        queue = self.queue
        if queue is None:
            raise RetryableSinkError("the disk buffer is not open")
        for payload, count in self._frames(batch, queue.frame_limit):
            while True:
                self._space.clear()
                try:
                    if await self.blocking(queue.append, payload, count):
                        self._data.set()
                        break
                except OSError as exc:
                    raise RetryableSinkError(f"cannot write to the disk buffer: {exc}") from exc
                if self.buffer.when_full == "drop_newest":
                    metrics.RECORDS_DROPPED.labels(self.name, "buffer_full").inc(count)
                    log.warning(
                        "the disk buffer is full; dropping records",
                        extra={"sink": self.name, "records": count},
                    )
                    break
                await self._space.wait()

    def _frames(self, batch: Sequence[Record], limit: int) -> Iterator[tuple[bytes, int]]:
        """The batch as payloads of at most ``limit`` bytes (halved until they fit)."""
        payload = encode_batch(batch)
        if HEADER.size + len(payload) <= limit:
            yield payload, len(batch)
        elif len(batch) > 1:
            records = list(batch)
            half = len(records) // 2
            yield from self._frames(records[:half], limit)
            yield from self._frames(records[half:], limit)
        else:
            metrics.RECORDS_DROPPED.labels(self.name, "too_large").inc()
            log.error("a record is larger than the disk buffer can hold; dropped", extra={"sink": self.name})

    async def flush(self) -> None:
        """Nothing to do: an append is durable when ``send`` returns."""

    async def close(self) -> None:
        """Stop the sender (a delivery in flight gets ``drain_timeout``), close the sink and the queue."""
        self._stopping.set()
        self._data.set()
        sender, self._sender = self._sender, None
        try:
            if sender is not None:
                await asyncio.wait({sender}, timeout=self._close_grace)
        finally:
            if sender is not None and not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
            try:
                await self.inner.close()
            finally:
                if self.queue is not None:
                    await self.blocking(self.queue.close)

    # -- the sender ---------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        assert self.queue is not None
        queue = self.queue
        while not self._stopping.is_set():
            self._data.clear()
            try:
                frame = await self.blocking(queue.read_next)
            except OSError as exc:
                log.error("cannot read the disk buffer", extra={"sink": self.name, "err": str(exc)})
                await self._sleep(IDLE_TICK)
                continue
            if frame is None:
                await self._sleep_until(self._data, IDLE_TICK)
                continue
            queue.note_head(frame)
            if not await self._delivery.send(self.inner, frame.records):
                return
            if not await self._flush_inner():
                return
            try:
                await self.blocking(queue.acknowledge, frame)
            except OSError as exc:  # delivered again after a restart: at most this batch
                log.error(
                    "cannot save the disk buffer's position", extra={"sink": self.name, "err": str(exc)}
                )
            if frame.replayed:
                metrics.DISK_BUFFER_REPLAYED.labels(self.name).inc(frame.count)
            self._space.set()

    async def _flush_inner(self) -> bool:
        attempt = 0
        while True:
            try:
                await self.inner.flush()
                return True
            except Exception as exc:
                delay = self._delivery.backoff(attempt)
                log.warning(
                    "a sink could not flush; retrying",
                    extra={"sink": self.name, "err": str(exc) or repr(exc)},
                )
                if not await self._sleep(delay):
                    return False
                attempt += 1

    async def _bounded(self, awaitable: Awaitable[_T]) -> _T:
        return await awaitable  # close() cancels a delivery still in flight after its grace

    async def _sleep(self, delay: float) -> bool:
        """Sleep ``delay`` seconds or until close(); False once closing."""
        await self._sleep_until(self._stopping, delay)
        return not self._stopping.is_set()

    async def _sleep_until(self, event: asyncio.Event, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), delay)


__all__ = ["DiskBufferedSink", "DiskQueue", "buffered", "decode_batch", "encode_batch"]
