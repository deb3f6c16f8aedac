"""Standard output: one JSON object per line (:meth:`Record.to_json`), flushed after every batch.

Options: none.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from itertools import chain, repeat
from typing import Any, ClassVar

from nodeagent.config.schema import Section
from nodeagent.logs.record import Record, RecordBatch, Records
from nodeagent.logs.sinks.base import RetryableSinkError, Sink

_encode_string = json.encoder.encode_basestring  # C-accelerated, ensure_ascii=False semantics
_encode_value = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# What a JSON string escapes (with ensure_ascii=False); text without any of it goes between quotes as is.
_ESCAPED = (*map(chr, range(0x20)), '"', "\\")


def encode_json_lines(batch: Sequence[Record]) -> bytes:
    """The batch as JSON lines; a stray lone surrogate becomes '?' rather than an encoding error.

    Byte for byte what ``Record.to_json`` gives, but built from columns (:class:`Records`): the fields a
    file's records share (stream, file, node, kubernetes) are encoded once per run, and times and
    messages are escaped only when some of them have anything to escape.
    """
    if isinstance(batch, RecordBatch):
        runs = batch.runs
    elif isinstance(batch, Records):
        runs = [batch]
    else:
        runs = _runs_of(batch)
    return ("".join(map(_encode_run, runs)) or "\n").encode("utf-8", "replace")


def _runs_of(records: Sequence[Record]) -> list[Records]:
    """Records one by one, grouped into runs of the same file, node and kubernetes object."""
    runs: list[Records] = []
    key = None
    for record in records:
        if (record.file, record.node, id(record.kubernetes)) != key:
            key = (record.file, record.node, id(record.kubernetes))
            runs.append(Records([], [], [], record.file, record.node, record.kubernetes))
        run = runs[-1]
        run.times.append(record.time)
        run.messages.append(record.message)
        run.streams.append(record.stream)
    return runs


def _encode_run(run: Records) -> str:
    """JSON lines, each ending with a newline."""
    times, messages = run.times, run.messages
    try:
        text = "".join(times) + "".join(messages)
    except TypeError:  # not all strings: the general encoder (it raises for what JSON cannot hold)
        return "".join(record.to_json() + "\n" for record in run)
    if not any(map(text.__contains__, _ESCAPED)):  # a memchr per character: faster than one scan
        # Nothing to escape (the usual log line): the strings go between quotes as they are.
        head, middle, close = '{"time":"', '","message":"', '"'
    else:
        head, middle, close = '{"time":', ',"message":', ""
        times, messages = map(_encode_string, times), map(_encode_string, messages)
    shared = f',"file":{_encode_value(run.file)},"node":{_encode_value(run.node)}'
    if run.kubernetes is not None:
        shared += f',"kubernetes":{_encode_value(run.kubernetes)}'
    tails = {stream: f'{close},"stream":{_encode_value(stream)}{shared}}}\n' for stream in set(run.streams)}
    return "".join(
        chain.from_iterable(
            zip(repeat(head), times, repeat(middle), messages, map(tails.__getitem__, run.streams))
        )
    )


class StdoutSink(Sink):
    type: ClassVar[str] = "stdout"
    option_schema: ClassVar[Section] = Section((), subject="a stdout sink")

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        self.read_options()

    @staticmethod
    def _write(data: bytes) -> None:
        stream = sys.stdout
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:
            stream.flush()  # anything printed as text first keeps its place
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode("utf-8"))
            stream.flush()

    async def send(self, batch: Sequence[Record]) -> None:
        if not batch:
            return
        data = encode_json_lines(batch)
        try:
            # A pipe to a slow reader can block; keep that off the event loop.
            await asyncio.to_thread(self._write, data)
        except (OSError, ValueError) as exc:  # ValueError: stdout closed
            raise RetryableSinkError(f"{self.name}: writing to stdout failed: {exc}") from exc
