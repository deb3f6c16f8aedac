"""The record every sink receives and the column form the reader makes (encoded by :mod:`.encoding`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, ClassVar, overload


@dataclass(slots=True)
class Record:
    """One log event.

    ``time`` is RFC 3339 with nanoseconds (``2026-11-27T22:38:48.123456789Z``): the CRI/docker timestamp
    when the line carries one, else the time it was read. ``kubernetes`` is set only for container logs,
    with the fields the file path gives (namespace, pod, pod_uid, container, container_id,
    restart_count). ``journal`` is set only for journal records (see
    :func:`nodeagent.logs.journald.journal_record`).
    """

    time: str
    message: str
    stream: str | None
    file: str
    node: str
    kubernetes: dict[str, Any] | None = None
    journal: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "time": self.time,
            "message": self.message,
            "stream": self.stream,
            "file": self.file,
            "node": self.node,
        }
        if self.kubernetes is not None:
            data["kubernetes"] = self.kubernetes
        if self.journal is not None:
            data["journal"] = self.journal
        return data

    def to_json(self) -> str:
        """One line of JSON, no trailing newline (see :func:`nodeagent.logs.encoding.record_json`)."""
        from nodeagent.logs.encoding import record_json  # the encoding module builds on this one

        return record_json(self)


class Records(Sequence[Record]):
    """Records of one file (same ``file``, ``node`` and ``kubernetes``), kept as columns.

    The reader makes these rather than a Record per line: a Record is built only when a sink looks at
    one, and the JSON encoder reads the columns directly.
    """

    __slots__ = ("file", "kubernetes", "messages", "node", "streams", "times")
    # True in subclasses whose records carry more than these columns: encoders then go record by record.
    per_record_fields: ClassVar[bool] = False

    def __init__(
        self,
        times: list[str],
        messages: list[str],
        streams: list[str | None],
        file: str,
        node: str,
        kubernetes: dict[str, Any] | None,
    ) -> None:
        self.times = times
        self.messages = messages
        self.streams = streams
        self.file = file
        self.node = node
        self.kubernetes = kubernetes

    def __len__(self) -> int:
        return len(self.messages)

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Records: ...

    def __getitem__(self, index: int | slice) -> Record | Records:
        if isinstance(index, slice):
            return Records(
                self.times[index],
                self.messages[index],
                self.streams[index],
                self.file,
                self.node,
                self.kubernetes,
            )
        return Record(
            self.times[index],
            self.messages[index],
            self.streams[index],
            self.file,
            self.node,
            self.kubernetes,
        )

    def __iter__(self) -> Iterator[Record]:
        return map(
            Record,
            self.times,
            self.messages,
            self.streams,
            repeat(self.file),
            repeat(self.node),
            repeat(self.kubernetes),
        )

    def __repr__(self) -> str:
        return f"<Records {self.file} x{len(self)}>"


class RecordBatch(Sequence[Record]):
    """Several :class:`Records` one after the other (a batch the pipeline gives to the sinks)."""

    __slots__ = ("_length", "runs")

    def __init__(self, runs: list[Records]) -> None:
        self.runs = runs
        self._length = sum(map(len, runs))

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._length
        if index >= 0:
            for run in self.runs:
                if index < len(run):
                    return run[index]
                index -= len(run)
        raise IndexError("record index out of range")

    def __iter__(self) -> Iterator[Record]:
        return chain.from_iterable(self.runs)
