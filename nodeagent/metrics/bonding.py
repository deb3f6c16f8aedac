"""bonding: configured and active slaves of each Linux bonding master (node_bonding_{slaves,active}).

Masters are listed in <sysfs>/class/net/bonding_masters, their slaves in <master>/bonding/slaves; a
slave counts as active when its bonding_slave/mii_status reads "up". The slave's directory below the
master is ``lower_<slave>`` on current kernels and ``slave_<slave>`` on older ones.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge
from nodeagent.metrics.host.files import Paths, read_attribute
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, NoDataError, register


def _slave_mii_status(master_dir: str, slave: str) -> str | None:
    for prefix in ("lower_", "slave_"):
        try:
            return read_attribute(f"{master_dir}/{prefix}{slave}/bonding_slave/mii_status")
        except (FileNotFoundError, NotADirectoryError):
            continue
    return None


def read_bonding(paths: Paths) -> tuple[dict[str, tuple[int, int]], list[Skip]]:
    """master -> (configured slaves, active slaves), and the masters or slaves skipped.

    Raises FileNotFoundError when there is no bonding_masters file (bonding module not loaded). A
    master or slave whose files are missing is skipped (upstream fails the collector).
    """
    net = paths.sys("class", "net")
    status = {}
    skipped: list[Skip] = []
    for master in read_attribute(f"{net}/bonding_masters").split():
        master_dir = f"{net}/{master}"
        try:
            slaves = read_attribute(f"{master_dir}/bonding/slaves").split()
        except (FileNotFoundError, NotADirectoryError) as exc:
            skipped.append(Skip(f"bonding master {master}", exc))
            continue
        active = 0
        for slave in slaves:
            state = _slave_mii_status(master_dir, slave)
            if state is None:
                skipped.append(Skip(f"bonding master {master}: slave without mii_status", slave))
            elif state == "up":
                active += 1
        status[master] = (len(slaves), active)
    return status, skipped


@register
class BondingCollector(Collector):
    name = "bonding"

    def collect(self) -> Iterable[Metric]:
        try:
            status, skipped = read_bonding(self.paths)
        except FileNotFoundError as exc:
            raise NoDataError(f"bonding not loaded: {exc}") from exc
        self.report(skipped)
        slaves = gauge("node_bonding_slaves", "Slaves configured in each bonding master.")
        active = gauge("node_bonding_active", "Slaves of each bonding master whose MII status is up.")
        for master, (configured, up) in status.items():
            labels = {"master": master}
            add_sample(slaves, labels, float(configured))
            add_sample(active, labels, float(up))
        yield slaves
        yield active
