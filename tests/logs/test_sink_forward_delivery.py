"""The forward sink in the real shipper: 20,000 lines through a strict forward server that injects every
fault it knows; nothing lost, and each fault that kept a message without acknowledging it repeats at most
that one batch (counted by the sequence numbers in the lines)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from nodeagent.logs.sinks import make_sink
from tests.logs.conftest import eventually, make_config, sample, shipping, write_lines
from tests.logs.fake_fluentd import FakeFluentd

RECORDS = 20_000
BATCH = 500
# The faults by data message number; no_ack and wrong_ack keep the events without a valid ack, so the
# retry repeats that batch; the others keep nothing (reset, refusal) or ack late but in time.
PLAN = {
    2: "no_ack",
    5: "reset_mid_chunk",
    9: "refuse",
    13: "wrong_ack",
    17: "delay_ack",
    21: "close_after_ack",
    26: "reset_mid_chunk",
    30: "no_ack",
}
KEEP_WITHOUT_ACK = sum(1 for fault in PLAN.values() if fault in ("no_ack", "wrong_ack"))


async def test_20000_records_through_injected_faults_lose_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    write_lines(log, [f"seq={n:05d} payload {'x' * (n % 40)}" for n in range(RECORDS)])
    config = make_config(tmp_path, [log], input_options={"read_from": "head"}, batch_max_records=BATCH)
    async with FakeFluentd(shared_key="k3y-for-the-test", plan=PLAN, ack_delay=0.1) as server:
        sink = make_sink(
            {
                "type": "forward",
                "address": server.address,
                "shared_key": "k3y-for-the-test",
                "ack_timeout": "1s",
                "timeout": "2s",
                "tag": "app.{file}",
            },
            name="fw-delivery",
        )
        missed_before = sample("nodeagent_logs_sink_acks_missed_total", {"sink": "fw-delivery"})
        async with shipping(config, sink):

            def all_arrived() -> bool:
                return len({event.record["message"][:9] for event in server.events}) == RECORDS

            await eventually(all_arrived, timeout=120, what=f"{RECORDS} records at the server")
        counts = Counter(event.record["message"][:9] for event in server.events)
        assert len(counts) == RECORDS  # 0 lost
        assert max(counts.values()) <= 2
        repeated = sorted(int(seq[4:]) for seq, count in counts.items() if count > 1)
        # Each fault that kept events without an ack repeats one batch, at most: contiguous runs of lines.
        runs = [seq for n, seq in enumerate(repeated) if n == 0 or repeated[n - 1] != seq - 1]
        # A late ack (a loaded machine) counts as missed too: the bound is per missed ack, each repeating
        # at most its own batch.
        missed = sample("nodeagent_logs_sink_acks_missed_total", {"sink": "fw-delivery"}) - missed_before
        seen_faults = f"missed acks {missed}, repeated runs from {runs}, {len(repeated)} repeated records"
        assert missed >= KEEP_WITHOUT_ACK and len(runs) <= missed, seen_faults
        assert len(repeated) <= len(runs) * BATCH, seen_faults
        assert server.messages_seen > max(PLAN)  # every fault was met
        assert {event.tag for event in server.events} == {"app" + str(log).replace("/", ".")}
        assert not [r for r in server.rejections if "refused" not in r]
