"""The log shipper's composition root: :func:`run_logs` builds the checkpoint store, sinks, pipeline
and reader from the config, wires them together and runs them until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from nodeagent import runtime
from nodeagent.config.logs import LogsConfig
from nodeagent.logs import metrics
from nodeagent.logs.blocking import Blocking
from nodeagent.logs.checkpoint import CheckpointStore
from nodeagent.logs.diskbuffer import buffered
from nodeagent.logs.pipeline import Pipeline, PipelineInput
from nodeagent.logs.reader import FileReader
from nodeagent.logs.sinks import make_sink
from nodeagent.logs.sinks.base import Sink

if TYPE_CHECKING:
    from nodeagent.logs.podmeta import PodMetadata

log = logging.getLogger("nodeagent.logs.shipper")


async def run_logs(
    config: LogsConfig,
    *,
    node_name: str,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
    sinks: Sequence[Sink] | None = None,
    executor: Executor | None = None,
) -> None:
    """Ship logs until ``stop`` is set; then drain (at most ``drain_timeout``), commit and return.

    ``ready`` is set once the first scan is done and file events are armed. ``sinks`` replaces the
    configured sinks (for embedding and tests). ``executor``: where every blocking call of the shipper
    (file reads, checkpoint writes, file sinks) runs; None: the loop's default executor.
    """
    runtime.reuse_large_buffers()
    blocking = Blocking(executor)
    if sinks is None:
        sinks = [buffered(make_sink(spec.as_spec(), name=spec.name), spec, config) for spec in config.sinks]
    store = CheckpointStore(config.checkpoint_path)
    try:
        await blocking(store.load)
    except OSError as exc:
        metrics.CHECKPOINT_ERRORS.labels("load").inc()
        log.error(
            "cannot use the state directory; positions will not survive a restart",
            extra={"path": str(config.state_dir), "err": str(exc)},
        )
    for sink in sinks:
        sink.blocking = blocking
    pipeline = Pipeline(sinks, store, config, blocking)
    events = metrics.ShipperMetrics([i.name for i in config.inputs] + [j.name for j in config.journals])
    reader_output: PipelineInput = pipeline
    podmeta: PodMetadata | None = None
    if config.kubernetes.enabled:
        from nodeagent.logs.podmeta import PodMetadata, node_name_for  # the API client only when used

        podmeta = PodMetadata(
            config.kubernetes,
            node_name_for(config.kubernetes, node_name),
            pipeline,
            config.buffer_max_bytes,
            backoff=(config.retry_initial_backoff, config.retry_max_backoff),
        )
        reader_output = podmeta.input
    reader = FileReader(config, store, reader_output, node_name, events, blocking)
    store.keep_journals({item.name for item in config.journals})
    sender = asyncio.create_task(pipeline.run(), name="logs-send")
    enriching = asyncio.create_task(podmeta.run(), name="logs-podmeta") if podmeta else None
    reading = asyncio.create_task(
        _read_all(reader, config, store, pipeline, node_name, stop, ready), name="logs-read"
    )
    try:
        await asyncio.wait({sender, reading}, return_when=asyncio.FIRST_COMPLETED)
        if sender.done():  # only a bug ends the sender before close()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            sender.result()
            raise RuntimeError("the log sender stopped unexpectedly")
        reading.result()
        if podmeta is not None:
            podmeta.input.flush()  # what waits for metadata goes into the drain too
        pipeline.close(config.drain_timeout)
        await sender
    except BaseException:
        for task in (sender, reading):
            task.cancel()
        raise
    finally:
        if enriching is not None:
            enriching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await enriching
        reader.close()
        store.close()


async def _read_all(
    reader: FileReader,
    config: LogsConfig,
    store: CheckpointStore,
    pipeline: Pipeline,
    node_name: str,
    stop: asyncio.Event,
    ready: asyncio.Event | None,
) -> None:
    """The file reader and the journal inputs, side by side, until ``stop``."""
    if not config.journals:
        await reader.run(stop, ready)
        return
    from nodeagent.logs.journald import run_journals  # only when a journal input is configured

    async with asyncio.TaskGroup() as group:
        group.create_task(reader.run(stop, ready), name="logs-read-files")
        group.create_task(
            run_journals(config.journals, store, pipeline, node_name, stop), name="logs-journal"
        )
