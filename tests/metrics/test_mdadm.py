"""mdadm collector: /proc/mdstat arrays and sysfs md attributes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nodeagent.metrics import mdadm
from tests.metrics.conftest import Scraped, write_tree

MDSTAT = """Personalities : [raid1] [raid6]
md1 : active raid1 sdb1[1] sda1[0] sdc1[2](S)
      1000 blocks [2/2] [UU]
      [==>.....]  recovery = 12.6% (126/1000) finish=1.0min speed=1K/sec

md2 : active raid1 sdd1[0]
      garbage line
md3 : inactive sde[0](F)
      2000 blocks super 1.2

unused devices: <none>
"""


def test_mdstat_skips_a_malformed_array_and_keeps_the_rest() -> None:
    parsed, skipped = mdadm.parse_mdstat(MDSTAT)
    arrays = {md.name: md for md in parsed}
    assert len(skipped) == 1  # md2
    assert set(arrays) == {"md1", "md3"}
    assert (arrays["md1"].activity_state, arrays["md1"].blocks_synced, arrays["md1"].disks_spare) == (
        "recovering",
        126,
        1,
    )
    md3 = arrays["md3"]
    assert (md3.disks_active, md3.disks_failed, md3.blocks_synced) == (0, 1, 2000)


def test_mdadm_reads_sysfs_raid_disks_and_degraded(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "proc/mdstat": MDSTAT,
            "sys/block/md1/md/level": "raid1\n",
            "sys/block/md1/md/raid_disks": "2\n",
            "sys/block/md1/md/degraded": "1\n",
            "sys/block/md9/md/level": "raid0\n",
            "sys/block/md9/md/raid_disks": "3\n",
            "sys/block/md8/md/level": "raid5\n",
            "sys/block/md8/md/raid_disks": "x\n",  # bad: left out
            "sys/block/mdfoo/size": "1\n",  # no md/ directory: not an array
        },
    )
    result = scrape("mdadm")
    lines, ok = result.lines, result.ok
    assert ok
    assert [line for line in lines if line.startswith(("node_md_degraded", "node_md_raid_disks"))] == [
        'node_md_degraded{device="md1"} 1',
        'node_md_degraded{device="md9"} 0',
        'node_md_raid_disks{device="md1"} 2',
        'node_md_raid_disks{device="md9"} 3',
    ]
    assert 'node_md_state{device="md1",state="recovering"} 1' in lines
