"""What every sink implements, and the errors that tell the pipeline to retry or to drop a batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from nodeagent.config.schema import Section
from nodeagent.logs.blocking import DEFAULT, Blocking
from nodeagent.logs.record import Record


class SinkError(Exception):
    """Base class for delivery failures."""


class RetryableSinkError(SinkError):
    """Connection errors, timeouts, 429 and 5xx: the pipeline retries with backoff and jitter.

    ``retry_after``: the seconds the destination asked us to wait (an HTTP ``Retry-After``, a "slow
    down" answer); the pipeline waits at least that long (up to its cap) before sending again.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSinkError(SinkError):
    """The destination refused records for good (a 4xx other than 429): logged, counted, dropped.

    ``refused``: how many records of the batch were refused when the destination kept the others (Loki
    keeping the rest of a push, Elasticsearch items dead-lettered); None means the whole batch.
    """

    def __init__(self, message: str, *, refused: int | None = None) -> None:
        super().__init__(message)
        self.refused = refused


class Sink(ABC):
    """A destination for records.

    ``send`` delivers one batch and returns only once the destination has it (for the file sink: written
    and, at commit, fsynced). It raises RetryableSinkError or PermanentSinkError; anything else is
    treated as retryable. The pipeline never calls ``send`` concurrently on one sink.
    """

    type: ClassVar[str]
    option_schema: ClassVar[Section]  # the options, declared next to the sink's code
    blocking: Blocking = DEFAULT  # where blocking calls run: the shipper sets the pool it was handed
    # True for a wrapper that only stores batches on their way (a disk buffer): what reaches the
    # destination is counted by the wrapper's own sender, not when the pipeline hands it a batch.
    buffering: ClassVar[bool] = False

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        self.name = name
        self.options = options

    def read_options(self) -> dict[str, Any]:
        """The options as typed values (defaults filled in); raises ConfigError naming the option."""
        return self.option_schema.read(self.options)

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections or files."""

    def prepare(self, batch: Sequence[Record]) -> None:  # noqa: B027 - optional hook
        """The pipeline calls this with a batch before ``send`` gets the same batch, while the previous
        batch's commit (fsyncs) still runs in a thread: a sink may do its CPU work (encoding) here."""

    @abstractmethod
    async def send(self, batch: Sequence[Record]) -> None:
        """Deliver the batch (in order)."""

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Make everything sent so far durable (fsync for files); called before a checkpoint commit."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; called once at shutdown after the last send."""
