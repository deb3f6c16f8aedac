"""The periodic rescan is the safety net for changes no file event reports (a lost event, a network
filesystem written from elsewhere): with its directory listings kept from the scan before (nothing in the
directories changed), it still sees growth, truncation and rotation."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from nodeagent.logs import discovery
from nodeagent.logs.checkpoint import CheckpointStore
from nodeagent.logs.reader import FileReader
from nodeagent.logs.watch.inotify import InotifyWatcher
from tests.logs.conftest import eventually, make_config, write_lines
from tests.logs.test_reader import RecordingEvents, SegmentList


class Events(RecordingEvents):
    def last_behind(self, name: str) -> int | None:
        values = [call[2] for call in self.calls if call[:2] == ("bytes_behind", name)]
        return values[-1] if values else None


class GatedSegments(SegmentList):
    """Keeps the lines it is given, and has space only while ``open`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()
        self.open.set()

    async def wait_for_space(self) -> None:
        await self.open.wait()


@pytest.fixture
def no_file_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """Events are watched (the reader counts on them and polls nothing) but none arrives; directories
    changed a moment ago already count as settled, so the rescans take unchanged ones from the listings
    kept."""
    monkeypatch.setattr(InotifyWatcher, "_changes", lambda self, events: ([], []))
    monkeypatch.setattr(discovery, "RACY_NS", 0)


async def test_without_events_a_rescan_still_sees_growth_truncation_and_rotation(
    tmp_path: Path, no_file_events: None
) -> None:
    logs = tmp_path / "logs" / "ns_pod_1" / "c"
    logs.mkdir(parents=True)
    log, other = logs / "0.log", logs / "1.log"
    write_lines(log, ["one"])
    write_lines(other, ["other"])
    await asyncio.sleep(0.05)  # the directories' timestamps are behind the first scan
    config = make_config(tmp_path, [tmp_path / "logs/*/*/*.log"], rescan_interval="200ms")
    name = config.inputs[0].name
    events, pipeline = Events(), GatedSegments()
    reader = FileReader(config, CheckpointStore(config.checkpoint_path), pipeline, "node-1", events)
    listings = reader._listings[0]
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(reader.run(stop, ready))
    try:
        await eventually(lambda: sorted(pipeline.messages) == ["one", "other"], what="the first lines")
        await eventually(
            lambda: len(listings) == 3 and listings.listed == 0, what="a rescan from kept listings"
        )

        # Growth: bytes_behind shows it by the next rescan while reading waits for space (the files are
        # settled first: the once-a-second size refresh looks only at files that may be behind).
        await eventually(lambda: not reader._unsettled, what="the files settled at their ends")
        pipeline.open.clear()
        write_lines(log, ["two " + "x" * 100])
        await eventually(lambda: events.last_behind(name) == 105, what="bytes_behind after a rescan")
        pipeline.open.set()
        await eventually(lambda: pipeline.messages[-1:] == ["two " + "x" * 100], what="the grown line")
        assert listings.listed == 0  # nothing in the directories changed

        # copytruncate: shorter than what was read.
        os.truncate(log, 0)
        write_lines(log, ["three"])
        await eventually(lambda: pipeline.messages[-1:] == ["three"], what="the line after truncation")
        assert ("file_truncated", name) in events.calls

        # Rotation by rename: the directory changed, so it is listed again.
        write_lines(log, ["last before rotation"])
        log.rename(logs / "0.log.1")
        write_lines(log, ["first after rotation"])
        await eventually(
            lambda: pipeline.messages[-2:] == ["last before rotation", "first after rotation"],
            what="the rotated file's end, then the new file",
        )
        assert ("file_rotated", name) in events.calls
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        reader.close()
