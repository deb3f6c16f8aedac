"""node_exporter 1.12's command lines run nodeagent unchanged (issue 9, section 2).

Real command lines (kube-prometheus' DaemonSet args, Debian's default ARGS, node_exporter's e2e run) start a
real agent on 127.0.0.1; the table of node_exporter's flags is checked against the settings table; the
refusals node_exporter makes before it serves exit 2 with one line.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import subprocess
import urllib.request
from pathlib import Path

import pytest

from nodeagent import cli
from nodeagent.config import ConfigError, Settings, load_yaml_file, settings_table
from nodeagent.config.upstream_flags import (
    DEPRECATED_COLLECTORS,
    EXCLUSIVE_PAIRS,
    FLAGS,
    UPSTREAM_COLLECTORS,
    Disposition,
    Flag,
    Kind,
    all_flags,
    collector_of,
    disposition,
    flag_dispositions,
)
from nodeagent.metrics.registry import all_collectors
from tests.conftest import FIXTURES, ROOT, e2e_flags, free_port, require_binary, require_shared
from tests.test_cli import AGENT, _wait_ready

DATA = Path(__file__).parent / "data"
KUBE_PROMETHEUS = FIXTURES / "daemonsets" / "kube-prometheus-node-exporter.daemonset.yaml"


def kube_prometheus_args() -> list[str]:
    """The node-exporter container's args of kube-prometheus' DaemonSet."""
    manifest = load_yaml_file(str(require_shared(KUBE_PROMETHEUS)))
    containers = manifest["spec"]["template"]["spec"]["containers"]
    (exporter,) = [c for c in containers if c["name"] == "node-exporter"]
    return [str(arg) for arg in exporter["args"]]


def debian_args(default_file: Path) -> list[str]:
    """ARGS of a Debian /etc/default/prometheus-node-exporter as its unit passes them: the unit runs
    ``prometheus-node-exporter $ARGS``, so systemd splits the value at whitespace."""
    for line in default_file.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0].startswith("ARGS="):
            return words[0].removeprefix("ARGS=").split()
    raise AssertionError(f"no ARGS in {default_file}")


def resolve(argv: list[str]) -> Settings:
    table = settings_table()
    return cli.resolve_from_args(cli.build_parser("run", table).parse_args(["run", *argv]), table)


# --- real agents ------------------------------------------------------------------------------------


def _start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*AGENT, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _scrape(port: int, proc: subprocess.Popen[str]) -> str:
    """/metrics of the agent once it is ready (fails when the process exits first)."""
    _wait_ready(port, proc, timeout=30.0)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode())


def _stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM (the agent's clean stop), then its stderr; killed if it does not stop."""
    proc.terminate()
    try:
        return proc.communicate(timeout=15)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_kube_prometheus_args_run_unchanged(node_exporter_fixture_tree: Path, tmp_path: Path) -> None:
    """The DaemonSet's args as they are, without a sub-command; only the host mounts (/host/sys,
    /host/root) point at node_exporter's fixture host and the port is a free one on 127.0.0.1."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "sys").symlink_to(node_exporter_fixture_tree / "sys")
    (host / "root").symlink_to(node_exporter_fixture_tree)
    port = free_port()
    argv = []
    for arg in kube_prometheus_args():
        if arg.startswith("--web.listen-address="):
            arg = f"--web.listen-address=127.0.0.1:{port}"
        argv.append(arg.replace("=/host/", f"={host}/"))
    assert "--no-collector.wifi" in argv and "--no-collector.btrfs" in argv
    proc = _start([*argv, "--no-logs"])  # the log shipper is ours, node_exporter has none
    try:
        body = _scrape(port, proc)
    finally:
        err = _stop(proc)
    lines = body.splitlines()
    assert "node_load1 0.21" in lines  # the fixture's /proc/loadavg, through /host/root/proc
    assert 'node_scrape_collector_success{collector="netclass"} 1' in lines
    assert 'node_scrape_collector_success{collector="hwmon"} 1' not in lines  # --no-collector.hwmon
    assert "level=error" not in err
    assert 'msg="nodeagent started"' in err


def test_debian_default_args_run_unchanged() -> None:
    """Debian's /etc/default/prometheus-node-exporter (ARGS="") as its unit passes it; the test adds
    only a listen address on 127.0.0.1 after the ARGS (Debian's default is :9100)."""
    args = debian_args(DATA / "debian-prometheus-node-exporter.default")
    assert args == []
    port = free_port()
    proc = _start([*args, f"--web.listen-address=127.0.0.1:{port}", "--no-logs"])
    try:
        body = _scrape(port, proc)
    finally:
        _stop(proc)
    assert 'node_scrape_collector_success{collector="loadavg"} 1' in body.splitlines()


def test_debian_style_args_with_deprecated_flags_run(tmp_path: Path) -> None:
    """ARGS as many Debian hosts carry them (the deprecated names node_exporter 1.12 still accepts)."""
    default_file = tmp_path / "prometheus-node-exporter"
    default_file.write_text(
        'ARGS="--collector.diskstats.ignored-devices=^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\\\d+n\\\\d+p)'
        "\\\\d+$ "
        "--collector.filesystem.ignored-mount-points=^/(sys|proc|dev|run)($|/) "
        f'--collector.textfile.directory={tmp_path}"\n'
    )
    args = debian_args(default_file)
    assert (
        args[0] == "--collector.diskstats.ignored-devices=^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$"
    )
    port = free_port()
    proc = _start([*args, f"--web.listen-address=127.0.0.1:{port}", "--no-logs"])
    try:
        _scrape(port, proc)
    finally:
        err = _stop(proc)
    deprecations = [line for line in err.splitlines() if "deprecated" in line]
    assert len(deprecations) == 2, err
    assert "use --collector.diskstats.device-exclude" in deprecations[0]
    assert "use --collector.filesystem.mount-points-exclude" in deprecations[1]


def test_repeated_listen_address_serves_on_each() -> None:
    ports = [free_port(), free_port()]
    proc = _start(["--no-logs", *(f"--web.listen-address=127.0.0.1:{port}" for port in ports)])
    try:
        for port in ports:
            assert "nodeagent_build_info" in _scrape(port, proc)
    finally:
        _stop(proc)


# --- the flag table ---------------------------------------------------------------------------------


def test_every_e2e_flag_is_accepted(
    node_exporter_fixture_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """node_exporter's e2e command line: accepted as a whole, and one scrape of the fixture host works."""
    flags = e2e_flags(node_exporter_fixture_tree)
    settings = resolve(flags)
    assert settings["collector.netdev.device-include"] == "lo"
    assert cli.main(["metrics", *flags, "--web.disable-exporter-metrics"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "node_load1 0.21" in out
    assert 'node_scrape_collector_success{collector="stat"} 1' in out


def test_every_upstream_flag_is_accepted() -> None:
    """Each node_exporter flag, with a value of its kind, is accepted on its own."""
    samples = {Kind.BOOL: "", Kind.INT: "=4", Kind.DURATION: "=5s", Kind.STRING: "=x", Kind.STRINGS: "=x"}
    special = {
        "log.level": "=debug",
        "log.format": "=json",
        "web.listen-address": "=127.0.0.1:9100",
        "web.telemetry-path": "=/m",
        "collector.ipvs.backend-labels": "=local_address",
        "collector.sysctl.include": "=fs.file-nr",
        "collector.sysctl.include-info": "=kernel.seccomp.actions_avail",
        "collector.pcidevice.idsfile": "=/usr/share/misc/pci.ids",
        "collector.perf.cpus": "=0-1",  # node_exporter refuses "x" too (when perf is on)
        "collector.perf.tracepoint": "=sched:sched_switch",
    }
    for name, flag in all_flags().items():
        value = "=/" if name.startswith("path.") else special.get(name, samples[flag.kind])
        try:
            resolve([f"--{name}{value}"])
            if flag.kind is Kind.BOOL:
                resolve([f"--no-{name}"])
        except ConfigError as exc:
            pytest.fail(f"--{name}{value} refused: {exc}")


def test_table_matches_the_registry() -> None:
    """Every collector of ours is one of node_exporter's; a deprecated name points at node_exporter's new
    one; a flag named like a setting of ours has that setting's syntax."""
    table = settings_table()
    assert set(all_collectors()) <= set(UPSTREAM_COLLECTORS)
    for flag in FLAGS:
        if flag.deprecated:  # node_exporter's new name for it, which we implement or accept
            assert flag.alias_of in all_flags(), flag.name
        setting = table.get(flag.name)
        if setting is not None:
            assert (flag.kind is Kind.BOOL) == cli.is_boolean(setting), flag.name
    names = [flag.name for flag in FLAGS]
    assert names == sorted(names) and len(set(names)) == len(names)
    dispositions = flag_dispositions(table)
    assert dispositions["web.listen-address"] is Disposition.IMPLEMENTED
    assert dispositions["collector.loadavg"] is Disposition.IMPLEMENTED
    assert dispositions["collector.netdev.device-whitelist"] is Disposition.ALIAS
    assert dispositions["runtime.gomaxprocs"] is Disposition.IGNORED
    assert dispositions["collector.ntp"] is Disposition.NOT_PROVIDED


@pytest.mark.parametrize("flag", [f for f in FLAGS if f.alias_of is not None], ids=lambda f: f.name)
def test_alias_sets_its_setting_and_deprecated_ones_warn_once(flag: Flag) -> None:
    assert flag.alias_of is not None
    value = "^x$" if flag.kind is Kind.STRING else ""
    settings = resolve([f"--{flag.name}={value}" if value else f"--{flag.name}"])
    warnings = [n for n in settings.notes if "deprecated" in n.message]
    if disposition(flag, settings_table()) is Disposition.ALIAS:
        assert settings[flag.alias_of] == (value or True)
        assert settings.origins[flag.alias_of] == "command line"
        assert len(warnings) == (1 if flag.deprecated else 0)
        if flag.deprecated:
            assert warnings[0].level == logging.WARNING
            assert warnings[0].message.endswith(f"use --{flag.alias_of}")
    else:  # an alias of an option of a collector we lack: accepted, not provided
        assert any(f"--{flag.name}" in n.fields.get("flags", "") for n in settings.notes)


def test_deprecated_alias_with_its_new_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["metrics", "--collector.netdev.device-blacklist=a", "--collector.netdev.device-exclude=b"]
    )
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "nodeagent: error: --collector.netdev.device-blacklist and --collector.netdev.device-exclude "
        "are mutually exclusive"
    ]


def test_flags_we_lack_are_named_once_at_startup(caplog: pytest.LogCaptureFixture) -> None:
    settings = resolve(
        [
            *(
                "--collector.ntp",
                "--collector.ntp.server=10.0.0.1",
                "--collector.runit",
                "--runtime.gomaxprocs=8",
            ),
            *("--collector.perf", "--collector.perf.tracepoint=sched:sched_switch", "--no-collector.logind"),
        ]
    )
    with caplog.at_level(logging.DEBUG, logger="nodeagent.config"):
        cli.log_notes(settings)
    records = [(r.levelname, r.getMessage(), getattr(r, "flags", "")) for r in caplog.records]
    deprecated = {
        r[1].split()[1]: set(r[2].split(",")) for r in records if "deprecated in node_exporter" in r[1]
    }
    assert deprecated == {
        "ntp": {"--collector.ntp", "--collector.ntp.server"},
        "runit": {"--collector.runit"},
    }
    assert all(r[0] == "WARNING" for r in records if "deprecated in node_exporter" in r[1])
    not_provided = [r for r in records if r[1].startswith("node_exporter flags accepted but not provided")]
    if "perf" not in all_collectors():
        assert len(not_provided) == 1 and not_provided[0][0] == "WARNING"
        assert set(not_provided[0][2].split(",")) == {"--collector.perf", "--collector.perf.tracepoint"}
    if "logind" not in all_collectors():
        off = [
            r for r in records if r[1].startswith("collectors switched off that nodeagent does not provide")
        ]
        assert [(r[0], r[2]) for r in off] == [("INFO", "--no-collector.logind")]
    gomaxprocs = [r for r in records if "gomaxprocs" in r[1]]
    assert [r[0] for r in gomaxprocs] == ["DEBUG"]
    assert "has no effect" in gomaxprocs[0][1]


def test_bad_value_of_a_flag_we_lack_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """node_exporter checks every flag's value (kingpin); so do we, also for flags we only accept."""
    assert cli.main(["--collector.ntp.server-port=many"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "nodeagent: error: collector.ntp.server-port: expected an integer, got 'many'"
    ]


def test_unknown_flag_is_still_refused() -> None:
    proc = subprocess.run(
        [*AGENT, "--collector.no-such-thing"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1
    assert "unrecognized arguments: --collector.no-such-thing" in proc.stderr


# --- node_exporter's refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--path.procfs=/nonexistent/proc", "path.procfs: /nonexistent/proc: no such file or directory"),
        ("--path.sysfs=/nonexistent/sys", "path.sysfs: /nonexistent/sys: no such file or directory"),
        ("--path.procfs=/etc/hostname", "path.procfs: /etc/hostname: not a directory"),
    ],
)
def test_missing_host_path_exits_2_before_listening(flag: str, message: str) -> None:
    port = free_port()
    proc = subprocess.run(
        [*AGENT, f"--web.listen-address=127.0.0.1:{port}", "--no-logs", flag],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"nodeagent: error: {message}"]


@pytest.mark.parametrize(("collector", "exclude", "include"), EXCLUSIVE_PAIRS, ids=lambda v: str(v))
def test_include_with_exclude_exits_2(
    collector: str, exclude: str, include: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["metrics", f"--collector.{collector}", f"--{exclude}=a", f"--{include}=b"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"nodeagent: error: --{exclude} and --{include} are mutually exclusive"
    ]


def test_include_with_exclude_of_a_collector_that_is_off_is_accepted() -> None:
    """node_exporter builds (and so checks) only the collectors that are on."""
    settings = resolve(
        [
            "--no-collector.netdev",
            "--collector.netdev.device-exclude=a",
            "--collector.netdev.device-include=b",
        ]
    )
    assert settings["collector.netdev"] is False


def test_include_with_a_default_exclude_is_accepted() -> None:
    """An exclude pattern left at its default does not count as given (node_exporter drops it)."""
    settings = resolve(["--collector.filesystem.mount-points-include=^/$"])
    assert settings["collector.filesystem.mount-points-include"] == "^/$"


def test_deprecated_collectors_are_the_upstream_ones() -> None:
    for name in DEPRECATED_COLLECTORS:
        assert UPSTREAM_COLLECTORS[name] is False
        assert name not in all_collectors()


# node_exporter flags of collectors we have whose feature nodeagent does not implement (yet): none.
KNOWN_GAPS: set[str] = set()


def test_collectors_we_have_take_all_their_upstream_flags() -> None:
    """A collector of ours implements every flag node_exporter has for it (by the same name), so a
    collector added with an option named differently from upstream's shows up here."""
    ours = set(all_collectors())
    gaps = {
        name
        for name, what in flag_dispositions(settings_table()).items()
        if what is Disposition.NOT_PROVIDED and collector_of(all_flags()[name]) in ours
    }
    assert gaps <= KNOWN_GAPS


def test_repeated_textfile_directory_reads_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--collector.textfile.directory repeats in node_exporter 1.12: every directory is read."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.prom").write_text(f"from_{name} 1\n")
    argv = ["metrics", "--collector.disable-defaults", "--collector.textfile"]
    argv += [f"--collector.textfile.directory={tmp_path / name}" for name in ("a", "b")]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert "from_a 1" in out and "from_b 1" in out


def test_e2e_command_line_output_equals_node_exporter(node_exporter_fixture_tree: Path) -> None:
    """Issue 9's measure: node_exporter's whole e2e command line, served over HTTP as Prometheus scrapes
    it; every family of e2e-output.txt (beyond the lines its e2e test drops) equals ours, TYPE line and
    every sample. Two families differ only where node_exporter's run differs from any installed one:
    rapl's ``path`` label holds the relative ``--path.sysfs`` it ran with; netdev reads this machine's
    loopback (its values are this host's, compared by labels only, as upstream's e2e test drops them)."""
    from tests.metrics.test_fixture_e2e import FAMILIES_OF, families_by_name, without_values

    port = free_port()
    tree = node_exporter_fixture_tree
    proc = _start([*e2e_flags(tree), f"--web.listen-address=127.0.0.1:{port}", "--no-logs"])
    try:
        ours = families_by_name(_scrape(port, proc))
    finally:
        stderr = _stop(proc)
    assert "Traceback" not in stderr
    expected = families_by_name((tree / "e2e-output.txt").read_text())
    live = re.compile(FAMILIES_OF["netdev"])
    differing = []
    for name, lines in expected.items():
        if not name or not lines:
            continue
        mine = ours.get(name, [])
        if name.startswith("node_rapl_"):
            mine = [line.replace(f'path="{tree}/sys/', 'path="collector/fixtures/sys/') for line in mine]
        if live.match(name):
            mine, lines = without_values(mine), without_values(lines)
        if mine != lines:
            differing.append(name)
    assert not differing, f"{len(differing)} families differ: {differing[:20]}"


def test_systemd_socket_activation_serves_on_the_passed_socket() -> None:
    """--web.systemd-socket with systemd's own launcher: it listens, starts us with the socket as fd 3."""
    launcher = require_binary("systemd-socket-activate")
    port = free_port()
    proc = subprocess.Popen(
        [
            launcher,
            "-l",
            f"127.0.0.1:{port}",
            *AGENT,
            "--no-logs",
            "--web.systemd-socket",
            "--web.listen-address=127.0.0.1:1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert "nodeagent_build_info" in _scrape(port, proc)
    finally:
        log = _stop(proc)
    assert f"address=127.0.0.1:{port}" in log


def test_systemd_socket_without_passed_sockets_exits_2() -> None:
    result = subprocess.run(
        [*AGENT, "--no-logs", "--web.systemd-socket"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if not key.startswith("LISTEN_")},
        timeout=60,
    )
    assert result.returncode == 2
    assert "no socket activation file descriptors found" in result.stderr
