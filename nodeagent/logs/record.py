"""The record every sink receives and the column form the reader makes (encoded by :mod:`.encoding`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import Any, overload

# The record's own keys: a field with one of these names is written as ``_<name>`` (see fields_items).
RESERVED_KEYS = frozenset(("time", "message", "stream", "file", "node", "kubernetes"))


def fields_items(fields: dict[str, Any]) -> list[tuple[str, Any]]:
    """A record's fields as the (key, value) pairs written beside its own keys, in order.

    Parsed fields go at the top level of the JSON object (as Fluent Bit's ``Merge_Log`` and Vector do),
    but never over the record's own keys: a field named ``time`` (or any of :data:`RESERVED_KEYS`) is
    written as ``_time`` (``__time`` if that is taken too, and so on), so nothing is lost or overwritten.
    """
    if RESERVED_KEYS.isdisjoint(fields):
        return list(fields.items())
    taken = set(fields)  # other fields keep their names; a renamed one takes none of them
    items: list[tuple[str, Any]] = []
    for key, value in fields.items():
        if key in RESERVED_KEYS:
            while key in taken:
                key = "_" + key
            taken.add(key)
        items.append((key, value))
    return items


@dataclass(slots=True)
class Record:
    """One log event.

    ``time`` is RFC 3339 with nanoseconds (``2026-11-27T22:38:48.123456789Z``): the CRI/docker timestamp
    when the line carries one, else the time it was read. ``kubernetes`` is set only for container logs,
    with the fields the file path gives (namespace, pod, pod_uid, container, container_id,
    restart_count). ``fields``: what filters parsed or added (None when none did); written at the top
    level beside the record's own keys (see :func:`fields_items`).
    """

    time: str
    message: str
    stream: str | None
    file: str
    node: str
    kubernetes: dict[str, Any] | None = None
    fields: dict[str, Any] | None = None

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
        if self.fields:
            data.update(fields_items(self.fields))
        return data

    def to_json(self) -> str:
        """One line of JSON, no trailing newline (see :func:`nodeagent.logs.encoding.record_json`)."""
        from nodeagent.logs.encoding import record_json  # the encoding module builds on this one

        return record_json(self)


class Records(Sequence[Record]):
    """Records of one file (same ``file``, ``node`` and ``kubernetes``), kept as columns.

    The reader makes these rather than a Record per line: a Record is built only when a sink looks at
    one, and the JSON encoder reads the columns directly. ``fields`` is a column only when a filter set
    fields on some record (None otherwise: plain lines pay nothing for it).
    """

    __slots__ = ("fields", "file", "kubernetes", "messages", "node", "streams", "times")

    def __init__(
        self,
        times: list[str],
        messages: list[str],
        streams: list[str | None],
        file: str,
        node: str,
        kubernetes: dict[str, Any] | None,
        fields: list[dict[str, Any] | None] | None = None,
    ) -> None:
        self.times = times
        self.messages = messages
        self.streams = streams
        self.file = file
        self.node = node
        self.kubernetes = kubernetes
        self.fields = fields

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
                None if self.fields is None else self.fields[index],
            )
        return Record(
            self.times[index],
            self.messages[index],
            self.streams[index],
            self.file,
            self.node,
            self.kubernetes,
            None if self.fields is None else self.fields[index],
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
            repeat(None) if self.fields is None else self.fields,
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
