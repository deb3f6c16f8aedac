"""From records to sinks and back to checkpoints: buffer, batches, retries, acknowledgements, commits.

The reader puts :class:`~nodeagent.logs.checkpoint.Segment` s in a buffer bounded by
``buffer_max_bytes``; when it is full, :meth:`Pipeline.wait_for_space` makes the reader wait
(backpressure: nothing is dropped). One sender task cuts batches (``batch_max_records``,
``batch_max_bytes``, or whatever is there after ``batch_timeout``) and gives each batch to every sink,
retrying RetryableSinkError (and unexpected errors) with exponential backoff and jitter, forever. A
PermanentSinkError drops the batch for that sink (logged, counted) and counts as its acknowledgement.

Once every sink has acknowledged a batch, the cursors advance to the batch's offsets; a commit then
flushes the sinks (fsync for files) and appends what changed to the checkpoint's change log (see
:mod:`~nodeagent.logs.checkpoint`). With the default ``checkpoint_interval: 0`` this happens after every
batch; it runs while the next batch is cut and encoded, and that batch is sent only once the commit is
done, so a crash re-sends at most one batch. Shutdown: reading stops, what was read is sent (retries
included) until ``drain_timeout``, then whatever is acknowledged is committed and the rest is read again
next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from nodeagent import runtime
from nodeagent.config.logs import LogsConfig
from nodeagent.logs import metrics
from nodeagent.logs.blocking import DEFAULT, Blocking
from nodeagent.logs.checkpoint import CheckpointStore, Position, Segment
from nodeagent.logs.filters import FilterChain, Tally
from nodeagent.logs.record import Record, RecordBatch, Records
from nodeagent.logs.sinks.base import PermanentSinkError, RetryableSinkError, Sink

log = logging.getLogger("nodeagent.logs.pipeline")

IDLE_TICK = 1.0  # how often an idle sender commits pending position changes and updates gauges
WRITE_RETRY_MAX = 60.0  # seconds between two tries to write a state file that could not be written
# A destination's Retry-After is honoured up to this: beyond it, a broken or hostile header would stall
# delivery for hours (RetryableSinkError.retry_after).
RETRY_AFTER_CAP = 300.0
_T = TypeVar("_T")


class DeadlineReached(Exception):
    """Shutdown's drain time is over."""


@dataclass(slots=True)
class Batch:
    records: RecordBatch
    acks: list[tuple[Position, int, int]]  # (cursor, offset, records) in order
    nbytes: int
    per_sink: list[Sequence[Record]] | None = None  # what each sink gets (its filters applied), once prepared


class PipelineInput(Protocol):
    """What the reader needs from the pipeline: wait while the buffer is full, put segments in it."""

    async def wait_for_space(self) -> None: ...

    def put(self, segment: Segment) -> None: ...


class Delivery:
    """The retry policy, in one place for the pipeline and the disk buffers' own senders.

    :meth:`send` gives a batch to a sink (starting it first if it never started) until the sink
    acknowledges it, retrying RetryableSinkError and unexpected errors with exponential backoff and jitter,
    forever; a PermanentSinkError drops the batch (logged, counted) and counts as its acknowledgement.
    ``bounded`` wraps every sink call and may raise DeadlineReached; ``sleep`` waits between attempts and
    returns False when the caller is out of time. Both come from the caller (the pipeline's drain deadline,
    a disk buffer's shutdown).
    """

    def __init__(
        self,
        config: LogsConfig,
        bounded: Callable[[Awaitable[Any]], Awaitable[Any]],
        sleep: Callable[[float], Awaitable[bool]],
    ) -> None:
        self.config = config
        self.bounded = bounded
        self.sleep = sleep
        self.started: set[int] = set()  # id() of the sinks whose start() succeeded

    async def start(self, sink: Sink) -> None:
        """Start a sink now if it can; if not, :meth:`send` tries again with the first batch."""
        try:
            await self.bounded(sink.start())
            self.started.add(id(sink))
        except DeadlineReached:
            raise
        except Exception as exc:  # send retries until it works
            log.warning(
                "sink could not start; will retry with the first batch",
                extra={"sink": sink.name, "err": repr(exc)},
            )

    async def send(self, sink: Sink, records: RecordBatch | Sequence[Record]) -> bool:
        """Deliver to one sink; True once acknowledged (or rejected for good), False when out of time."""
        count = len(records)
        attempt = 0
        while True:
            try:
                if id(sink) not in self.started:
                    await self.bounded(sink.start())
                    self.started.add(id(sink))
                await self.bounded(sink.send(records))
                if not sink.buffering:  # a buffer counts what its own sender delivers
                    metrics.RECORDS_SENT.labels(sink.name).inc(count)
                if attempt:
                    log.info("sink accepts batches again", extra={"sink": sink.name, "attempts": attempt + 1})
                return True
            except DeadlineReached:
                return False
            except PermanentSinkError as exc:
                # The destination may have kept the rest of the batch (exc.refused of count refused).
                refused = count if exc.refused is None else max(0, min(count, exc.refused))
                if not sink.buffering:
                    metrics.RECORDS_SENT.labels(sink.name).inc(count - refused)
                metrics.RECORDS_FAILED.labels(sink.name, "rejected").inc(refused)
                metrics.RECORDS_DROPPED.labels(sink.name, "rejected").inc(refused)
                log.error(
                    "sink rejected records of a batch; they are dropped",
                    extra={"sink": sink.name, "records": refused, "batch": count, "err": str(exc)},
                )
                return True
            except Exception as exc:
                reason = "retryable" if isinstance(exc, RetryableSinkError) else "error"
                metrics.RECORDS_FAILED.labels(sink.name, reason).inc(count)
                delay = self.backoff(attempt)
                retry_after = getattr(exc, "retry_after", None)
                if retry_after is not None:  # the destination said when: not sooner, up to the cap
                    delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
                log.warning(
                    "sending to a sink failed; retrying",
                    extra={
                        "sink": sink.name,
                        "records": count,
                        "attempt": attempt + 1,
                        "retry_in_seconds": round(delay, 3),
                        "err": str(exc) or repr(exc),
                    },
                )
                if not await self.sleep(delay):
                    return False
                attempt += 1
                metrics.RECORDS_RETRIED.labels(sink.name).inc(count)

    def backoff(self, attempt: int) -> float:
        cap = min(self.config.retry_max_backoff, self.config.retry_initial_backoff * 2 ** min(attempt, 30))
        return random.uniform(cap / 2, cap)


class Pipeline:
    def __init__(
        self,
        sinks: Sequence[Sink],
        store: CheckpointStore,
        config: LogsConfig,
        blocking: Blocking = DEFAULT,
    ) -> None:
        self.sinks = list(sinks)
        self.blocking = blocking
        self.store = store
        self.config = config
        self.buffered_bytes = 0  # read, not yet acknowledged
        self._segments: deque[Segment] = deque()  # read, not yet in a batch
        self._pending_records = 0
        self._pending_bytes = 0
        self._first_pending_at: float | None = None
        self._space = asyncio.Event()
        self._space.set()
        self._data = asyncio.Event()
        self._closing = asyncio.Event()
        self._deadline: float | None = None
        self._last_commit = time.monotonic()
        self._committing: asyncio.Task[None] | None = None  # the commit in progress (group commit)
        self._batches_since_release = False  # batches were taken since the last _release_buffers
        self._delivery = Delivery(config, self._bounded, self._sleep)
        # When the oldest read data whose position is not committed yet was read (None: all committed).
        self._uncommitted_since: float | None = None
        # The state file could not be written this many times in a row; no new try before _write_retry_at.
        self._write_failures = 0
        self._write_retry_at = 0.0
        metrics.CHECKPOINT_AGE.set_function(self.checkpoint_age)
        # Each sink's filters, by sink name (a batch they empty counts as acknowledged by that sink).
        self._filters = {spec.name: FilterChain(spec.filters) for spec in config.sinks if spec.filters}

    # -- reader side --------------------------------------------------------------------------------

    async def wait_for_space(self) -> None:
        while self.buffered_bytes >= self.config.buffer_max_bytes and not self._closing.is_set():
            self._space.clear()
            await self._space.wait()

    def put(self, segment: Segment) -> None:
        count = len(segment.records)
        if not count:
            return
        segment.cursor.inflight += count
        self._segments.append(segment)
        self._pending_records += count
        self._pending_bytes += segment.nbytes
        self.buffered_bytes += segment.nbytes
        metrics.BUFFER_BYTES.set(self.buffered_bytes)
        if self._first_pending_at is None:
            self._first_pending_at = time.monotonic()
        if self._uncommitted_since is None:
            self._uncommitted_since = time.monotonic()
        self._data.set()

    def checkpoint_age(self) -> float:
        """Seconds the oldest read data not committed yet has waited (0 when everything is committed):
        it grows through a sink outage, when no commit happens at all."""
        since = self._uncommitted_since
        return 0.0 if since is None else time.monotonic() - since

    def close(self, drain_timeout: float) -> None:
        """No more input: send what is buffered for at most ``drain_timeout`` seconds, commit, stop."""
        if self._deadline is None:
            self._deadline = time.monotonic() + drain_timeout
        self._closing.set()
        self._space.set()
        self._data.set()

    # -- sender -------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Send until closed and drained (or out of drain time), then commit and close the sinks.

        Group commit: a batch's commit (the sinks' fsyncs, then the checkpoint) runs in a task while the
        next batch is cut and prepared (filtered, encoded); that batch is delivered only once the commit is
        done, so a sink never holds more than one batch past the checkpoint (a crash repeats at most one).
        """
        try:
            for sink in self.sinks:
                await self._delivery.start(sink)
            while True:
                batch = await self._next_batch()
                if batch is None:
                    break
                if self._committing is not None:
                    # Two turns of the loop: the commit task starts the sinks' flushes, and they hand their
                    # fsyncs to threads; the encoding below then overlaps them.
                    await asyncio.sleep(0)
                    await asyncio.sleep(0)
                self._prepare(batch)
                await self._settle()
                if not await self._deliver(batch):
                    break  # drain time is over: this batch is not acknowledged, it is read again next time
                self._acknowledge(batch)
                interval = self.config.checkpoint_interval
                if interval <= 0 or time.monotonic() - self._last_commit >= interval:
                    self._start_commit()
                # The next batch may be long in coming (a quiet node): this one's records, acks and
                # per-sink views must not wait with it.
                batch = None
            await self._settle()
            await self._commit(final=True)
        finally:
            if self._committing is not None:
                self._committing.cancel()
            for sink in self.sinks:
                try:
                    await self._bounded(sink.close(), grace=0.5)
                except Exception as exc:
                    log.warning("closing a sink failed", extra={"sink": sink.name, "err": repr(exc)})

    async def _next_batch(self) -> Batch | None:
        cfg = self.config
        while True:
            now = time.monotonic()
            closing = self._closing.is_set()
            if self._pending_records:
                full = (
                    self._pending_records >= cfg.batch_max_records
                    or self._pending_bytes >= cfg.batch_max_bytes
                )
                waited = now - (self._first_pending_at or now)
                if full or closing or waited >= cfg.batch_timeout:
                    if not full:  # caught up: the backlog's buffers go back
                        self._release_buffers()
                    return self._take_batch()
                timeout = cfg.batch_timeout - waited
            elif closing:
                return None
            else:
                timeout = IDLE_TICK
            self._data.clear()
            try:
                await asyncio.wait_for(self._data.wait(), timeout)
            except TimeoutError:
                if not self._pending_records:
                    await self._idle_commit()

    def _take_batch(self) -> Batch:
        self._batches_since_release = True
        cfg = self.config
        runs: list[Records] = []
        taken = 0
        acks: list[tuple[Position, int, int]] = []
        nbytes = 0
        while self._segments and taken < cfg.batch_max_records and nbytes < cfg.batch_max_bytes:
            segment = self._segments[0]
            count = len(segment.records)
            take = min(count, cfg.batch_max_records - taken)
            if segment.nbytes and nbytes + segment.nbytes * take // count > cfg.batch_max_bytes:
                take = min(take, (cfg.batch_max_bytes - nbytes) * count // segment.nbytes)
                if take <= 0:
                    if runs:
                        break
                    take = 1
            if take == count:
                self._segments.popleft()
                runs.append(segment.records)
                part_bytes = segment.nbytes
                offset = segment.offsets[-1]
            else:
                part_bytes = segment.nbytes * take // count
                runs.append(segment.records[:take])
                offset = segment.offsets[take - 1]
                segment.records = segment.records[take:]
                segment.offsets = segment.offsets[take:]
                segment.nbytes -= part_bytes
            acks.append((segment.cursor, offset, take))
            taken += take
            nbytes += part_bytes
        self._pending_records -= taken
        self._pending_bytes -= nbytes
        self._first_pending_at = time.monotonic() if self._pending_records else None
        return Batch(RecordBatch(runs), acks, nbytes)

    def _prepare(self, batch: Batch) -> None:
        """Apply each sink's filters and let it encode (:meth:`Sink.prepare`): CPU work that overlaps the
        previous commit's fsyncs, which run in threads."""
        batch.per_sink = [self._filtered(sink, batch.records) for sink in self.sinks]
        for sink, records in zip(self.sinks, batch.per_sink, strict=True):
            if records:
                try:
                    sink.prepare(records)
                except Exception as exc:  # send does the work again, with the retry policy around it
                    log.debug("preparing a batch failed", extra={"sink": sink.name, "err": repr(exc)})

    async def _deliver(self, batch: Batch) -> bool:
        if batch.per_sink is None:
            self._prepare(batch)
        assert batch.per_sink is not None
        if len(self.sinks) == 1:
            return await self._send(self.sinks[0], batch.per_sink[0])
        results = await asyncio.gather(
            *(self._send(sink, records) for sink, records in zip(self.sinks, batch.per_sink, strict=True))
        )
        return all(results)

    async def _send(self, sink: Sink, records: Sequence[Record]) -> bool:
        """Deliver to one sink; True once acknowledged (or rejected for good), False at the deadline."""
        if not records:
            return True  # the sink's filters dropped the whole batch: nothing to wait for
        return await self._delivery.send(sink, records)

    def _filtered(self, sink: Sink, records: RecordBatch) -> Sequence[Record]:
        chain = self._filters.get(sink.name)
        if chain is None:
            return records
        tally = Tally()
        kept = chain.apply_batch(records, tally)
        metrics.FILTER_DROPPED.labels("sink", sink.name).inc(tally.dropped)
        metrics.FILTER_FAILURES.labels("sink", sink.name).inc(tally.failures)
        return kept

    def _backoff(self, attempt: int) -> float:
        return self._delivery.backoff(attempt)

    async def _sleep(self, delay: float) -> bool:
        """Sleep ``delay`` seconds or until the drain deadline; False when the deadline came first."""
        end = time.monotonic() + delay
        if self._deadline is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            wait = min(end - time.monotonic(), remaining)
            if wait > 0:
                await asyncio.sleep(wait)
            return time.monotonic() < self._deadline
        return True

    async def _bounded(self, awaitable: Awaitable[_T], grace: float = 0.0) -> _T:
        """Await, but no longer than the drain deadline (plus ``grace``) once shutdown has begun."""
        task = asyncio.ensure_future(awaitable)
        try:
            if self._deadline is None:
                closing = asyncio.ensure_future(self._closing.wait())
                try:
                    await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    closing.cancel()
                if task.done():
                    return task.result()
            remaining = (self._deadline or time.monotonic()) + grace - time.monotonic()
            try:
                return await asyncio.wait_for(asyncio.shield(task), max(0.0, remaining))
            except TimeoutError:
                raise DeadlineReached() from None
        finally:
            if not task.done():
                task.cancel()

    def _acknowledge(self, batch: Batch) -> None:
        store = self.store
        for cursor, offset, count in batch.acks:
            store.acknowledge(cursor, offset, count)
        self.buffered_bytes -= batch.nbytes
        metrics.BUFFER_BYTES.set(self.buffered_bytes)
        if self.buffered_bytes < self.config.buffer_max_bytes:
            self._space.set()

    # -- checkpoints --------------------------------------------------------------------------------

    async def _idle_commit(self) -> None:
        await self._settle()
        await self._commit(compact=True)  # nothing else to do: fold the change log into the snapshot
        self._release_buffers()

    def _release_buffers(self) -> None:
        """A backlog is over (the sender is idle, or batches no longer fill): the memory its large
        buffers kept goes back (see runtime.reuse_large_buffers). Trimming a heap of a few MB costs well
        under a millisecond; at most once per batch, and only after batches were sent."""
        if self._batches_since_release:
            self._batches_since_release = False
            runtime.trim_malloc()

    def _committed(self, as_of: float) -> None:
        """Everything acknowledged at ``as_of`` is committed."""
        self._last_commit = as_of
        # What is still buffered was read before now; nothing buffered: everything read is committed.
        self._uncommitted_since = as_of if self.buffered_bytes > 0 else None

    def _start_commit(self) -> None:
        """Commit what is acknowledged now, in a task: :meth:`_settle` waits for it."""
        assert self._committing is None
        self._committing = asyncio.create_task(self._commit(), name="logs-commit")

    async def _settle(self) -> None:
        """Wait for the commit in progress, if any."""
        committing, self._committing = self._committing, None
        if committing is not None:
            await committing

    async def _commit(self, *, final: bool = False, compact: bool = False) -> None:
        """Flush the sinks, then write what is acknowledged now: a change log line, or a snapshot when
        the sender is idle, at shutdown (``final``) or when the store says it is due."""
        if not final and time.monotonic() < self._write_retry_at:
            return  # the state file could not be written: try again after a backoff, not every batch
        as_of = time.monotonic()
        pending = self.store.prepare_commit(compact=compact or final)  # before any await: what is acked now
        if pending is None:
            self._committed(as_of)
            return
        try:
            flushes = [asyncio.ensure_future(sink.flush()) for sink in self.sinks]  # all at once
            failures = await self._bounded(asyncio.gather(*flushes, return_exceptions=True), grace=0.5)
            for failure in failures:
                if isinstance(failure, BaseException):
                    raise failure
        except Exception as exc:
            self.store.commit_failed()
            metrics.CHECKPOINT_ERRORS.labels("flush").inc()
            log.warning(
                "a sink could not flush; positions not committed", extra={"err": str(exc) or repr(exc)}
            )
            return
        try:
            await self.blocking(self.store.write_commit, pending)
        except OSError as exc:
            self.store.commit_failed()
            metrics.CHECKPOINT_ERRORS.labels("write").inc()
            self._write_failures += 1
            delay = min(WRITE_RETRY_MAX, 2.0 ** (self._write_failures - 1))
            self._write_retry_at = time.monotonic() + delay
            # One error, not one per second: the checkpoint age and checkpoint_errors_total tell the rest.
            (log.error if self._write_failures == 1 else log.debug)(
                "cannot write the checkpoint file; positions will not survive a restart until it can",
                extra={"path": str(self.store.path), "err": str(exc), "retry_in_seconds": delay},
            )
            return
        if self._write_failures:
            log.info(
                "checkpoint file written again",
                extra={"path": str(self.store.path), "failures": self._write_failures},
            )
            self._write_failures, self._write_retry_at = 0, 0.0
        self._committed(as_of)
