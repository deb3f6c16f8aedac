"""Standard output: one JSON object per line (:mod:`nodeagent.logs.encoding`), flushed after every batch.

Options: none.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent.config.schema import Section
from nodeagent.logs.encoding import encode_json_lines
from nodeagent.logs.record import Record
from nodeagent.logs.sinks.base import RetryableSinkError, Sink


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
            await self.blocking(self._write, data)
        except (OSError, ValueError) as exc:  # ValueError: stdout closed
            raise RetryableSinkError(f"{self.name}: writing to stdout failed: {exc}") from exc
