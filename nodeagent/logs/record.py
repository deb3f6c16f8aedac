"""The record every sink receives, and its one JSON-lines encoding."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Record:
    """One log event.

    ``time`` is RFC 3339 with nanoseconds (``2026-11-27T22:38:48.123456789Z``): the CRI/docker timestamp
    when the line carries one, else the time it was read. ``kubernetes`` is set only for container logs,
    with the fields the file path gives (namespace, pod, pod_uid, container, container_id,
    restart_count).
    """

    time: str
    message: str
    stream: str | None
    file: str
    node: str
    kubernetes: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"time": self.time, "message": self.message, "stream": self.stream,
                                "file": self.file, "node": self.node}
        if self.kubernetes is not None:
            data["kubernetes"] = self.kubernetes
        return data

    def to_json(self) -> str:
        """One line of JSON, no trailing newline; invalid UTF-8 was already replaced by the reader."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))
