"""Shared test helpers: fixture locations and the rule that a missing peer binary fails under CI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# ../shared next to the checkout (CI lays a copy there too); NODEAGENT_SHARED overrides.
SHARED = Path(os.environ.get("NODEAGENT_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
NODE_EXPORTER_FIXTURE = FIXTURES / "node_exporter"


def require_binary(name: str, *candidates: str) -> str:
    """Path of a peer binary; missing: fail when CI is set (CI installs it), else skip."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate)
        if found:
            return found
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    message = f"{name} is not installed (Debian package; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_shared(path: Path) -> Path:
    if not path.exists():
        message = f"shared fixture {path} is missing"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_prometheus(config_file: Path, workdir: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """The real Prometheus (Debian's) on a free 127.0.0.1 port with ``config_file``, its data and log
    (``prometheus.log``) in ``workdir``; yields (port, process) and stops it."""
    binary = require_binary("prometheus")
    port = free_port()
    with (workdir / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield port, proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# Empty directories of node_exporter's sys.ttar that the shared unpacking dropped; e2e-output.txt
# shows them (e.g. node_watchdog_info{name="watchdog1"} with every attribute empty).
LOST_EMPTY_DIRS = ("sys/class/watchdog/watchdog1",)


def _copy_file_or_link(src: str, dst: str) -> None:
    """Copy one file; a flattened symlink (a tiny file holding ``../target``) becomes a symlink again."""
    if os.path.getsize(src) < 512:
        with open(src, "rb") as fh:
            data = fh.read()
        if data.startswith(b"../") and b"\n" not in data:
            os.symlink(data.decode(), dst)
            return
    shutil.copyfile(src, dst)


def _restore_proc_self(self_link: Path) -> None:
    """proc/self arrives as a file holding its target (a PID): a link again, as procfs has it."""
    if self_link.is_file() and not self_link.is_symlink():
        target = self_link.read_text().strip()
        if target.isdigit():
            self_link.unlink()
            self_link.symlink_to(target)


def materialize_node_exporter_fixture(src: Path, dst: Path) -> Path:
    """Copy node_exporter's fake host to ``dst`` with its symlinks restored.

    The shared copy was unpacked without symlinks: each link under sys/ became a regular file whose
    content is the link target, and empty directories were dropped. sysfs readers follow links (hwmon
    device paths, /sys/class/* entries), so tests read a copy where those files are links again and
    the empty directories exist, as in node_exporter's own ttar fixture.
    """
    top_sys = lambda folder, names: ["sys"] if Path(folder) == src else []  # noqa: E731
    shutil.copytree(src, dst, symlinks=True, copy_function=shutil.copyfile, ignore=top_sys)
    shutil.copytree(src / "sys", dst / "sys", symlinks=True, copy_function=_copy_file_or_link)
    for empty in LOST_EMPTY_DIRS:
        (dst / empty).mkdir(parents=True, exist_ok=True)
    _restore_proc_self(dst / "proc" / "self")
    for root, dirs, _ in os.walk(dst):  # the shared tree is read-only; let pytest clean the copy up
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o755)
    os.chmod(dst, 0o755)
    return dst


@pytest.fixture(scope="session")
def node_exporter_fixture_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """node_exporter's fake host (proc, sys with symlinks, udev, usr, textfile), once per session."""
    src = require_shared(NODE_EXPORTER_FIXTURE)
    return materialize_node_exporter_fixture(src, tmp_path_factory.mktemp("node_exporter") / "fixture")


@pytest.fixture
def node_exporter_fixture(node_exporter_fixture_tree: Path) -> Path:
    return node_exporter_fixture_tree


def e2e_flags(here: Path) -> list[str]:
    """The collectors and flags of node_exporter's end-to-end test (../shared/fixtures/README.md)."""
    enabled = " ".join(
        (
            "arp bcache bcachefs bonding btrfs buddyinfo cgroups conntrack cpu cpufreq cpu_vulnerabilities",
            "diskstats dmi drbd edac entropy fibrechannel filefd hwmon infiniband interrupts ipvs",
            "kernel_hung ksmd lnstat loadavg mdadm meminfo meminfo_numa mountstats netdev netstat nfs nfsd",
            "pcidevice",
            "pressure processes qdisc rapl schedstat slabinfo sockstat softirqs stat sysctl textfile",
            "thermal_zone udp_queues vmstat watchdog wifi xfrm xfs zfs zoneinfo",
        )
    ).split()
    return [
        f"--path.procfs={here}/proc",
        f"--path.sysfs={here}/sys",
        f"--path.rootfs={here}",
        f"--path.udev.data={here}/udev/data",
        *(f"--collector.{name}" for name in enabled),
        *(f"--no-collector.{name}" for name in ("selinux", "filesystem", "timex", "uname")),
        "--collector.cpu.info",
        "--collector.cpu.info.bugs-include=^(cpu_meltdown|spectre_.*|mds)$",
        "--collector.cpu.info.flags-include=^(aes|avx.?|constant_tsc)$",
        "--collector.arp.device-exclude=nope",
        "--no-collector.arp.netlink",
        "--collector.bcache.priorityStats",
        "--collector.hwmon.chip-include=(applesmc|asus_nb_wmi|coretemp|hwmon4|ieee80211|nct6779)",
        "--collector.netclass.ignore-invalid-speed",
        "--collector.netclass.ignored-devices=(dmz|int)",
        "--collector.netdev.device-include=lo",
        "--collector.qdisc.device-include=(wlan0|eth0)",
        f"--collector.qdisc.fixtures={here}/qdisc/",
        "--collector.stat.softirq",
        "--collector.sysctl.include-info=kernel.seccomp.actions_avail",
        "--collector.sysctl.include=fs.file-nr",
        "--collector.sysctl.include=fs.file-nr:total,current,max",
        "--collector.sysctl.include=kernel.threads-max",
        f"--collector.textfile.directory={here}/textfile/two_metric_files/",
        f"--collector.wifi.fixtures={here}/wifi",
    ]


# The test PKI (tests/pki.py) for every TLS test.
from tests.pki import pki  # noqa: E402, F401
