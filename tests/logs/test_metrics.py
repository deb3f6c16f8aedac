"""The reader's events as metrics (nodeagent.logs.metrics.ShipperMetrics)."""

from __future__ import annotations

from nodeagent.agentmetrics import AGENT_REGISTRY
from nodeagent.logs.events import ReaderEvents
from nodeagent.logs.metrics import ShipperMetrics
from tests.logs.conftest import sample, unique_name


def test_every_input_has_its_series_from_the_start_and_events_move_them() -> None:
    name = unique_name("in")
    events: ReaderEvents = ShipperMetrics([name])
    labels = {"input": name}
    for family in ("nodeagent_logs_lines_read_total", "nodeagent_logs_files_watched"):
        assert AGENT_REGISTRY.get_sample_value(family, labels) == 0  # present, at 0
    events.lines_read(name, 3, 30)
    events.lines_cut(name, 1)
    events.file_rotated(name)
    events.file_truncated(name)
    events.read_error(name, "open")
    events.gave_up(name, "deleted", 100)
    events.gave_up(name, "deleted", 0)
    events.file_counts(name, 5, 2)
    events.bytes_behind(name, 7)
    assert sample("nodeagent_logs_lines_read_total", labels) == 3
    assert sample("nodeagent_logs_bytes_read_total", labels) == 30
    assert sample("nodeagent_logs_lines_truncated_total", labels) == 1
    assert sample("nodeagent_logs_files_rotated_total", labels) == 1
    assert sample("nodeagent_logs_files_truncated_total", labels) == 1
    assert sample("nodeagent_logs_read_errors_total", {**labels, "reason": "open"}) == 1
    assert sample("nodeagent_logs_bytes_given_up_total", {**labels, "reason": "deleted"}) == 100
    assert sample("nodeagent_logs_files_watched", labels) == 5
    assert sample("nodeagent_logs_files_open", labels) == 2
    assert sample("nodeagent_logs_bytes_behind", labels) == 7
