"""bonding: configured and active slaves of each Linux bonding master (node_bonding_{slaves,active}).

Masters are listed in <sysfs>/class/net/bonding_masters, their slaves in <master>/bonding/slaves; a
slave counts as active when its bonding_slave/mii_status reads "up". The slave's directory below the
master is ``lower_<slave>`` on current kernels and ``slave_<slave>`` on older ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from nodeagent.metrics._netcommon import report_bad_input
from nodeagent.metrics.registry import Collector, NoDataError, read_text, register


def _slave_mii_status(master_dir: Path, slave: str) -> str | None:
    for prefix in ("lower_", "slave_"):
        try:
            return read_text(master_dir / f"{prefix}{slave}" / "bonding_slave" / "mii_status").strip()
        except (FileNotFoundError, NotADirectoryError):
            continue
    return None


def read_bonding(sysfs: Path, collector: str = "bonding") -> dict[str, tuple[int, int]]:
    """master -> (configured slaves, active slaves).

    Raises FileNotFoundError when there is no bonding_masters file (bonding module not loaded). A
    master or slave whose files are missing is reported and skipped (upstream fails the collector).
    """
    net = sysfs / "class" / "net"
    status = {}
    for master in read_text(net / "bonding_masters").split():
        master_dir = net / master
        try:
            slaves = read_text(master_dir / "bonding" / "slaves").split()
        except (FileNotFoundError, NotADirectoryError) as exc:
            report_bad_input(collector, f"bonding master {master}", exc)
            continue
        active = 0
        for slave in slaves:
            state = _slave_mii_status(master_dir, slave)
            if state is None:
                report_bad_input(collector, f"bonding master {master}: slave without mii_status", slave)
            elif state == "up":
                active += 1
        status[master] = (len(slaves), active)
    return status


@register
class BondingCollector(Collector):
    name = "bonding"

    def collect(self) -> Iterable[Metric]:
        try:
            status = read_bonding(self.paths.sysfs)
        except FileNotFoundError as exc:
            raise NoDataError(f"bonding not loaded: {exc}") from exc
        slaves = GaugeMetricFamily(
            "node_bonding_slaves", "Slaves configured in each bonding master.", labels=["master"]
        )
        active = GaugeMetricFamily(
            "node_bonding_active", "Slaves of each bonding master whose MII status is up.", labels=["master"]
        )
        for master, (configured, up) in status.items():
            slaves.add_metric([master], float(configured))
            active.add_metric([master], float(up))
        yield slaves
        yield active
