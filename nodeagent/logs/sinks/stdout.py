"""Standard output: one JSON object per line (:meth:`Record.to_json`), flushed after every batch.

Options: none.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent.logs.record import Record
from nodeagent.logs.sinks._options import OptionReader
from nodeagent.logs.sinks.base import RetryableSinkError, Sink

_encode_string = json.encoder.encode_basestring  # C-accelerated, ensure_ascii=False semantics
_encode_value = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode_json_lines(batch: Sequence[Record]) -> bytes:
    """The batch as JSON lines; a stray lone surrogate becomes '?' rather than an encoding error.

    Byte for byte what ``Record.to_json`` gives, but the fields a file's records share (stream, file,
    node, kubernetes) are encoded once per batch: the per-record cost is the time and the message.
    """
    tails: dict[tuple, str] = {}
    lines = []
    for record in batch:
        key = (record.stream, record.file, record.node, id(record.kubernetes))
        tail = tails.get(key)
        if tail is None:
            tail = (f',"stream":{_encode_value(record.stream)},"file":{_encode_value(record.file)}'
                    f',"node":{_encode_value(record.node)}')
            if record.kubernetes is not None:
                tail += f',"kubernetes":{_encode_value(record.kubernetes)}'
            tails[key] = tail = tail + "}"
        time, message = record.time, record.message
        if type(time) is str and type(message) is str:
            lines.append('{"time":' + _encode_string(time) + ',"message":' + _encode_string(message) + tail)
        else:
            lines.append(record.to_json())
    return ("\n".join(lines) + "\n").encode("utf-8", "replace")


class StdoutSink(Sink):
    type: ClassVar[str] = "stdout"

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name, options)
        OptionReader(self.type, options).finish()

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
