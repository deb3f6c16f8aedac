"""The log shipper's own metrics (``nodeagent_logs_*``), registered on the agent registry.

:class:`ShipperMetrics` is how the reader's events (:class:`nodeagent.logs.events.ReaderEvents`) become
these metrics; the pipeline counts its own (delivery, buffer, checkpoints) directly.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from nodeagent.agentmetrics import AGENT_REGISTRY

_R = AGENT_REGISTRY

# Files, per input.
FILES_WATCHED = Gauge(
    "nodeagent_logs_files_watched", "Files matched by the input's globs.", ["input"], registry=_R
)
FILES_OPEN = Gauge("nodeagent_logs_files_open", "Files the input holds open now.", ["input"], registry=_R)
FILES_ROTATED = Counter(
    "nodeagent_logs_files_rotated", "Rotations seen (rename, kubelet, re-create).", ["input"], registry=_R
)
FILES_TRUNCATED = Counter(
    "nodeagent_logs_files_truncated",
    "Files found shorter than the read offset (copytruncate); reading restarted at 0.",
    ["input"],
    registry=_R,
)
PARSE_FAILURES = Counter(
    "nodeagent_logs_parse_failures",
    "Lines a parser failed on (hostile or broken input); shipped as plain text.",
    ["input"],
    registry=_R,
)
RECORDS_LOST = Counter(
    "nodeagent_logs_held_records_dropped",
    "Partial lines or multiline groups lost because the parser failed while holding them.",
    ["input"],
    registry=_R,
)
FILTER_DROPPED = Counter(
    "nodeagent_logs_filter_dropped",
    "Records a keep or drop filter dropped on purpose (stage: input or sink; name: its name).",
    ["stage", "name"],
    registry=_R,
)
FILTER_FAILURES = Counter(
    "nodeagent_logs_filter_failures",
    "Records a filter could not do its work on (not JSON or logfmt, no parsable time); passed on unchanged.",
    ["stage", "name"],
    registry=_R,
)
FILES_REFUSED = Counter(
    "nodeagent_logs_files_refused",
    "Matched paths not read because they resolve outside the input's roots (symlinks out).",
    ["input"],
    registry=_R,
)
READ_ERRORS = Counter(
    "nodeagent_logs_read_errors", "Files that could not be opened or read.", ["input", "reason"], registry=_R
)

# Data, per input.
LINES_READ = Counter("nodeagent_logs_lines_read", "Lines read.", ["input"], registry=_R)
BYTES_READ = Counter("nodeagent_logs_bytes_read", "Bytes read.", ["input"], registry=_R)
LINES_TRUNCATED = Counter(
    "nodeagent_logs_lines_truncated", "Lines longer than max_line_bytes, cut.", ["input"], registry=_R
)
BYTES_GIVEN_UP = Counter(
    "nodeagent_logs_bytes_given_up",
    "Bytes never read because a deleted file had to be closed before it was drained.",
    ["input", "reason"],
    registry=_R,
)
BYTES_BEHIND = Gauge(
    "nodeagent_logs_bytes_behind", "File sizes minus committed offsets.", ["input"], registry=_R
)

# Journal inputs.
JOURNALCTL_RESTARTS = Counter(
    "nodeagent_logs_journalctl_restarts",
    "Times a journald input's journalctl exited (or could not start) and was run again.",
    ["input"],
    registry=_R,
)
JOURNAL_ENTRIES_EXCLUDED = Counter(
    "nodeagent_logs_journal_entries_excluded",
    "Journal entries read and skipped by the input's exclude matches.",
    ["input"],
    registry=_R,
)

# Delivery, per sink.
RECORDS_SENT = Counter("nodeagent_logs_records_sent", "Records the sink acknowledged.", ["sink"], registry=_R)
RECORDS_FAILED = Counter(
    "nodeagent_logs_records_failed",
    "Records in batches whose delivery attempt failed.",
    ["sink", "reason"],
    registry=_R,
)
RECORDS_RETRIED = Counter(
    "nodeagent_logs_records_retried", "Records sent again after a failed attempt.", ["sink"], registry=_R
)
RECORDS_DROPPED = Counter(
    "nodeagent_logs_records_dropped", "Records given up for good.", ["sink", "reason"], registry=_R
)
SINK_DEAD_LETTER = Counter(
    "nodeagent_logs_sink_dead_letter_records",
    "Records a destination refused one by one for good (Elasticsearch items answered 4xx: mapping "
    "errors, bad index names, too large), by error type; written to the dead-letter file if set.",
    ["sink", "reason"],
    registry=_R,
)
SINK_LINES_TRUNCATED = Counter(
    "nodeagent_logs_sink_lines_truncated",
    "Lines a sink cut to the destination's maximum line size (Loki max_line_size).",
    ["sink"],
    registry=_R,
)

# Connections of the stream sinks (syslog, forward), per sink.
SINK_CONNECTIONS = Counter(
    "nodeagent_logs_sink_connections",
    "Connections a sink opened to its server (more than one: reconnects).",
    ["sink"],
    registry=_R,
)
SINK_HANDSHAKE_FAILURES = Counter(
    "nodeagent_logs_sink_handshake_failures",
    "Connections dropped because the server's authentication failed or refused ours.",
    ["sink"],
    registry=_R,
)
SINK_ACKS_MISSED = Counter(
    "nodeagent_logs_sink_acks_missed",
    "Messages sent whose acknowledgement never came (timeout, lost connection): the batch is sent again.",
    ["sink"],
    registry=_R,
)

# Pipeline.
BUFFER_BYTES = Gauge(
    "nodeagent_logs_buffer_bytes", "Bytes of records read but not yet acknowledged.", registry=_R
)
CHECKPOINT_AGE = Gauge(
    "nodeagent_logs_checkpoint_age_seconds", "Seconds since checkpoints were last committed.", registry=_R
)
CHECKPOINT_ERRORS = Counter(
    "nodeagent_logs_checkpoint_errors",
    "Checkpoint commits that failed (state "
    "directory not writable, sink flush failed); positions stay where they were.",
    ["reason"],
    registry=_R,
)

# Disk buffers, per sink (``buffer: {type: disk}``).
DISK_BUFFER_BYTES = Gauge(
    "nodeagent_logs_disk_buffer_bytes", "Bytes of the sink's disk buffer files.", ["sink"], registry=_R
)
DISK_BUFFER_RECORDS = Gauge(
    "nodeagent_logs_disk_buffer_records",
    "Records in the sink's disk buffer not yet acknowledged by the sink.",
    ["sink"],
    registry=_R,
)
DISK_BUFFER_OLDEST_AGE = Gauge(
    "nodeagent_logs_disk_buffer_oldest_record_age_seconds",
    "Seconds since the oldest unacknowledged batch was written to the disk buffer (0 when empty).",
    ["sink"],
    registry=_R,
)
DISK_BUFFER_REPLAYED = Counter(
    "nodeagent_logs_disk_buffer_replayed_records",
    "Records delivered from the disk buffer that an earlier run of the agent had stored.",
    ["sink"],
    registry=_R,
)
DISK_BUFFER_CORRUPTED = Counter(
    "nodeagent_logs_disk_buffer_corrupted",
    "Torn or corrupted stretches of the disk buffer skipped (each one batch or part of one).",
    ["sink"],
    registry=_R,
)
DISK_BUFFER_CORRUPTED_BYTES = Counter(
    "nodeagent_logs_disk_buffer_corrupted_bytes",
    "Bytes of the disk buffer skipped as torn or corrupted.",
    ["sink"],
    registry=_R,
)
# Pod metadata from the API (logs.kubernetes).
PODMETA_WATCH_RESTARTS = Counter(
    "nodeagent_logs_podmeta_watch_restarts",
    "Pod watches started again: closed by the server, expired (410 Gone: listed again) or after an error.",
    ["reason"],
    registry=_R,
)
PODMETA_API_ERRORS = Counter(
    "nodeagent_logs_podmeta_api_errors", "Failed API requests of the pod metadata watch.", registry=_R
)
PODMETA_API_UP = Gauge(
    "nodeagent_logs_podmeta_api_up", "1 while the pod metadata watch is listed and watching.", registry=_R
)
PODMETA_CACHED_PODS = Gauge(
    "nodeagent_logs_podmeta_cached_pods", "Pods in the metadata cache (deleted: kept for late lines).",
    ["state"], registry=_R,
)  # fmt: skip
PODMETA_RECORDS_WITHOUT_METADATA = Counter(
    "nodeagent_logs_podmeta_records_without_metadata",
    "Container log records shipped with path metadata only: pod not found, API unavailable, "
    "wait expired, hold buffer full.",
    ["reason"],
    registry=_R,
)

_PER_INPUT = (
    LINES_READ,
    BYTES_READ,
    LINES_TRUNCATED,
    FILES_WATCHED,
    FILES_OPEN,
    FILES_ROTATED,
    FILES_TRUNCATED,
    BYTES_BEHIND,
    PARSE_FAILURES,
    RECORDS_LOST,
    FILES_REFUSED,
)


class ShipperMetrics:
    """The reader's events as the metrics above (implements :class:`~nodeagent.logs.events.ReaderEvents`).

    Each input's per-input series exist from the start (at 0), not from its first event.
    """

    def __init__(self, inputs: Iterable[str]) -> None:
        for name in inputs:
            for family in _PER_INPUT:
                family.labels(name)
            FILTER_DROPPED.labels("input", name)
            FILTER_FAILURES.labels("input", name)

    def lines_read(self, input: str, lines: int, nbytes: int) -> None:
        LINES_READ.labels(input).inc(lines)
        BYTES_READ.labels(input).inc(nbytes)

    def lines_cut(self, input: str, count: int) -> None:
        LINES_TRUNCATED.labels(input).inc(count)

    def file_rotated(self, input: str) -> None:
        FILES_ROTATED.labels(input).inc()

    def file_truncated(self, input: str) -> None:
        FILES_TRUNCATED.labels(input).inc()

    def parse_failed(self, input: str, lines: int) -> None:
        PARSE_FAILURES.labels(input).inc(lines)

    def records_dropped(self, input: str, records: int) -> None:
        RECORDS_LOST.labels(input).inc(records)

    def records_filtered(self, input: str, dropped: int, failures: int) -> None:
        FILTER_DROPPED.labels("input", input).inc(dropped)
        FILTER_FAILURES.labels("input", input).inc(failures)

    def file_refused(self, input: str) -> None:
        FILES_REFUSED.labels(input).inc()

    def read_error(self, input: str, reason: str) -> None:
        READ_ERRORS.labels(input, reason).inc()

    def gave_up(self, input: str, reason: str, unread_bytes: int) -> None:
        if unread_bytes:
            BYTES_GIVEN_UP.labels(input, reason).inc(unread_bytes)

    def file_counts(self, input: str, watched: int, open: int) -> None:
        FILES_WATCHED.labels(input).set(watched)
        FILES_OPEN.labels(input).set(open)

    def bytes_behind(self, input: str, nbytes: int) -> None:
        BYTES_BEHIND.labels(input).set(nbytes)
