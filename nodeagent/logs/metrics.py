"""The log shipper's own metrics (``nodeagent_logs_*``), registered on the agent registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from nodeagent.agentmetrics import AGENT_REGISTRY

_R = {"registry": AGENT_REGISTRY}

# Files, per input.
FILES_WATCHED = Gauge("nodeagent_logs_files_watched", "Files matched by the input's globs.", ["input"], **_R)
FILES_OPEN = Gauge("nodeagent_logs_files_open", "Files the input holds open now.", ["input"], **_R)
FILES_ROTATED = Counter(
    "nodeagent_logs_files_rotated", "Rotations seen (rename, kubelet, re-create).", ["input"], **_R
)
FILES_TRUNCATED = Counter(
    "nodeagent_logs_files_truncated",
    "Files found shorter than the read offset (copytruncate); reading restarted at 0.",
    ["input"],
    **_R,
)
READ_ERRORS = Counter(
    "nodeagent_logs_read_errors", "Files that could not be opened or read.", ["input", "reason"], **_R
)

# Data, per input.
LINES_READ = Counter("nodeagent_logs_lines_read", "Lines read.", ["input"], **_R)
BYTES_READ = Counter("nodeagent_logs_bytes_read", "Bytes read.", ["input"], **_R)
LINES_TRUNCATED = Counter(
    "nodeagent_logs_lines_truncated", "Lines longer than max_line_bytes, cut.", ["input"], **_R
)
BYTES_GIVEN_UP = Counter(
    "nodeagent_logs_bytes_given_up",
    "Bytes never read because a deleted file had to be closed before it was drained.",
    ["input", "reason"],
    **_R,
)
BYTES_BEHIND = Gauge("nodeagent_logs_bytes_behind", "File sizes minus committed offsets.", ["input"], **_R)

# Delivery, per sink.
RECORDS_SENT = Counter("nodeagent_logs_records_sent", "Records the sink acknowledged.", ["sink"], **_R)
RECORDS_FAILED = Counter(
    "nodeagent_logs_records_failed",
    "Records in batches whose delivery attempt failed.",
    ["sink", "reason"],
    **_R,
)
RECORDS_RETRIED = Counter(
    "nodeagent_logs_records_retried", "Records sent again after a failed attempt.", ["sink"], **_R
)
RECORDS_DROPPED = Counter(
    "nodeagent_logs_records_dropped", "Records given up for good.", ["sink", "reason"], **_R
)

# Pipeline.
BUFFER_BYTES = Gauge("nodeagent_logs_buffer_bytes", "Bytes of records read but not yet acknowledged.", **_R)
CHECKPOINT_AGE = Gauge(
    "nodeagent_logs_checkpoint_age_seconds", "Seconds since checkpoints were last committed.", **_R
)
CHECKPOINT_ERRORS = Counter(
    "nodeagent_logs_checkpoint_errors",
    "Checkpoint commits that failed (state "
    "directory not writable, sink flush failed); positions stay where they were.",
    ["reason"],
    **_R,
)
