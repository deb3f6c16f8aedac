"""mountstats collector: NFS mounts of <procfs>/self/mountstats."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.mountstats import parse_mountstats
from tests.metrics.conftest import Scraped, write_tree

EVENTS = " ".join(["1"] * 27)
NFS = (
    "device 192.168.1.1:/srv/test mounted on /mnt/nfs/test with fstype nfs4 statvers=1.1\n"
    "\topts:\trw,vers=4.0\n\tage:\t13968\n"
    f"\tevents:\t{EVENTS}\n"
    "\tbytes:\t1207640230 0 0 0 1210214218 0 295483 0\n"
    "\txprt:\ttcp 832 0 1 0 11 6428 6428 0 12154 0 24 26 5726\n"
    "\txprt:\tudp 832 0 6428 6428 0 12154 0 24 26 5726\n"
    "\tper-op statistics\n"
    "\t        NULL: 0 0 0 0 0 0 0 0\n"
    "\t        READ: 1298 1298 0 207680 1210292152 9007199254740993 79386 79407\n"
    "\n"
)


def test_parse_a_mount_with_two_transports() -> None:
    mounts, skipped = parse_mountstats("device proc mounted on /proc with fstype proc\n" + NFS)
    assert not skipped and mounts[0] is None
    mount = mounts[1]
    assert mount is not None
    assert mount.age_seconds == 13968 and mount.bytes[4] == 1210214218
    assert [t.protocol for t in mount.transports] == ["tcp", "udp"]
    assert mount.transports[1].values[:6] == [832, 0, 0, 0, 0, 6428]  # udp has no connect/idle fields
    assert [op.name for op in mount.operations] == ["NULL", "READ"]


def test_malformed_blocks_are_skipped_and_keep_positions() -> None:
    text = (
        "device short line\n"
        + NFS.replace("age:\t13968", "age:\tsoon")
        + "device x mounted on /y with fstype ext4 statvers=1.1\n"
        + NFS.replace("tcp 832 0 1", "tcp 832 1")  # wrong transport length
        + NFS.replace("bytes:\t1207640230 0", "bytes:\t1207640230")
        + NFS
    )
    mounts, skipped = parse_mountstats(text)
    assert len(skipped) == 5
    assert [m is not None for m in mounts] == [False, False, False, False, False, True]


def test_scrape_deduplicates_like_node_exporter(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    info = "194 21 0:42 / {} rw shared:144 - nfs4 192.168.1.1:/srv/test rw,vers=4.0,addr=192.168.1.1\n"
    write_tree(
        tmp_path,
        {
            "proc/self/mountstats": NFS + NFS.replace("/mnt/nfs/test ", "/mnt/nfs/other "),
            "proc/self/mountinfo": info.format("/mnt/nfs/test") + info.format("/mnt/nfs/other"),
        },
    )
    result = scrape("mountstats")
    assert result.ok
    labels = 'export="192.168.1.1:/srv/test",mountaddr="192.168.1.1"'
    info_lines = [line for line in result.lines if "mountpoint_info" in line]
    assert info_lines == [
        f'node_mountstats_nfs_mountpoint_info{{{labels},mountpoint="/mnt/nfs/other",protocol="tcp"}} 1',
        f'node_mountstats_nfs_mountpoint_info{{{labels},mountpoint="/mnt/nfs/test",protocol="tcp"}} 1',
        f'node_mountstats_nfs_mountpoint_info{{{labels},mountpoint="/mnt/nfs/test",protocol="udp"}} 1',
    ]
    assert (
        f'node_mountstats_nfs_transport_sends_total{{{labels},protocol="udp",transport="1"}} 6428'
        in result.lines
    )
    queue = (
        f'node_mountstats_nfs_operations_queue_time_seconds_total{{{labels},operation="READ",protocol="tcp"}}'
    )
    assert f"{queue} 0.001" in result.lines  # wrapped at 2^53 ms as node_exporter does
    assert not any("congestion" in line for line in result.lines)


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parser_never_raises(text: str) -> None:
    parse_mountstats(text)
    parse_mountstats(NFS.replace("\tper-op", text))


DEVICE = "device 192.168.1.1:/srv mounted on /mnt/nfs with fstype nfs4 statvers="
# prometheus/procfs mountstats_test.go: inputs its parser rejects; here each is one skipped mount
INVALID = [
    "device foo",
    "device rootfs BAD on / with fstype rootfs",
    "device rootfs mounted BAD / with fstype rootfs",
    "device rootfs mounted on / BAD fstype rootfs",
    "device rootfs mounted on / with BAD rootfs",
    "device rootfs mounted on / with fstype rootfs stats",
    DEVICE + "1.1\nopts:",
    DEVICE + "1.1\nbytes: 0",
    DEVICE + "1.1\nevents: 0",
    DEVICE + "1.1\nper-op statistics\nFOO 0",
    DEVICE + "1.1\nxprt: tcp",
    DEVICE + "foo\nxprt: tcp 0",
    DEVICE + "1.0\nxprt: tcp 0 0 0 0 0 0 0 0 0 0 0 0 0",
    DEVICE + "1.1\nxprt: tcp 0 0 0 0 0 0 0 0 0 0",
    DEVICE + "1.1\nxprt: tcpx 0 0 0 0 0 0 0 0 0 0",
]


def test_inputs_procfs_rejects_are_skipped() -> None:
    for text in INVALID:
        mounts, skipped = parse_mountstats(text)
        assert mounts == [None] and len(skipped) == 1, text


def test_minimal_and_rdma_mounts_parse() -> None:
    mounts, skipped = parse_mountstats(DEVICE.replace("nfs4", "nfs") + "1.1")
    assert not skipped and mounts[0] is not None and mounts[0].transports == []
    rdma = " ".join(str(n) for n in range(1, 29))
    mounts, skipped = parse_mountstats(DEVICE + f"1.1\nxprt: rdma {rdma}\n")
    assert not skipped and mounts[0] is not None
    values = mounts[0].transports[0].values
    assert values[:10] == list(range(1, 11)) and values[10:13] == [0, 0, 0] and values[13] == 11
