"""Settings: defaults < config file < flags, the YAML layout, and refusals naming key, file and line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import pytest

from nodeagent import cli
from nodeagent.config import ConfigError, parse_regex, resolve_settings, settings_table, split_listen_address
from nodeagent.metrics import registry
from nodeagent.metrics.registry import Collector, CollectorOption, enabled_collectors


class _RegexOptionCollector(Collector):
    """A collector with a regex option, so regex refusals are tested without depending on real ones."""

    name = "testregex"
    default_enabled = False
    options = (CollectorOption("names-include", "", "Names to include.", parse_regex),)

    def collect(self):  # pragma: no cover - never enabled here
        return []


@pytest.fixture
def regex_collector() -> Iterator[type[Collector]]:
    registry.register(_RegexOptionCollector)
    try:
        yield _RegexOptionCollector
    finally:
        registry._REGISTRY.pop(_RegexOptionCollector.name, None)


def write(tmp_path: Path, text: str, name: str = "agent.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text).lstrip("\n"))
    return path


def resolve(argv: list[str]):
    """Parse a `run` command line and resolve it, as the CLI does."""
    table = settings_table()
    args = cli.build_parser("run", table).parse_args(["run", *argv])
    return cli.resolve_from_args(args, table)


def refuse(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI on a command line that must be refused; return its one error line."""
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(cli.main(argv))
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_defaults_match_node_exporter() -> None:
    settings = resolve([])
    assert settings["web.listen-address"] == ":9100"
    assert settings["web.telemetry-path"] == "/metrics"
    assert settings["web.max-requests"] == 40
    assert settings["path.procfs"] == "/proc"
    assert settings["path.sysfs"] == "/sys"
    assert settings["path.rootfs"] == "/"
    assert settings["path.udev.data"] == "/run/udev/data"
    assert settings["log.level"] == "info"
    assert settings["log.format"] == "logfmt"
    assert settings["collector.disable-defaults"] is False
    assert settings.origins["web.listen-address"] == "default"


def test_file_overrides_defaults_and_flags_override_file(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
        web:
          listen-address: 127.0.0.1:9200
          telemetry_path: /m
        path:
          procfs: /host/proc
          udev:
            data: /host/udev
        log: {level: debug, format: json}
        node-name: from-file
        collector:
          loadavg: {enabled: false}
    """,
    )
    settings = resolve([f"--config={config}", "--web.listen-address=127.0.0.1:9300", "--log.level", "warn"])
    assert settings["web.listen-address"] == "127.0.0.1:9300"
    assert settings.origins["web.listen-address"] == "command line"
    assert settings["web.telemetry-path"] == "/m"
    assert settings.origins["web.telemetry-path"] == f"{config}:3"
    assert settings["path.procfs"] == "/host/proc"
    assert settings["path.udev.data"] == "/host/udev"
    assert settings["log.level"] == "warn"
    assert settings["log.format"] == "json"
    assert settings["node-name"] == "from-file"
    assert settings["collector.loadavg"] is False
    assert "loadavg" not in enabled_collectors(settings.values)


def test_flag_switch_overrides_file_switch(tmp_path: Path) -> None:
    config = write(tmp_path, "collector:\n  loadavg: false\n  disable-defaults: true\n")
    settings = resolve([f"--config={config}", "--collector.loadavg"])
    assert settings["collector.loadavg"] is True
    assert enabled_collectors(settings.values, settings["collector.disable-defaults"]) == ["loadavg"]


def test_collector_options_come_from_the_file(tmp_path: Path, regex_collector: type[Collector]) -> None:
    config = write(
        tmp_path,
        """
        collector:
          testregex:
            enabled: true
            names-include: ^(a|b)$
    """,
    )
    settings = resolve([f"--config={config}"])
    assert settings["collector.testregex"] is True
    assert settings["collector.testregex.names-include"] == "^(a|b)$"


def test_logs_section_is_passed_through_untouched(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
        logs:
          inputs:
            - name: varlog
              paths: [/var/log/*.log]
        node-name: n1
    """,
    )
    settings = resolve([f"--config={config}"])
    logs = settings.structured["logs"]
    assert logs["inputs"][0]["paths"] == ["/var/log/*.log"]
    assert logs.line_of("inputs") == 2  # keeps lines for the shipper's own error messages
    assert settings["node-name"] == "n1"


def test_resolve_settings_rejects_bad_flag_value_naming_flag() -> None:
    with pytest.raises(ConfigError) as error:
        resolve_settings(settings_table(), None, {"web.max-requests": "many"})
    assert str(error.value).startswith("--web.max-requests: expected an integer")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (":9100", (None, 9100)),
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::1]:9100", ("::1", 9100)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_address_forms(address: str, expected: tuple[str | None, int]) -> None:
    assert split_listen_address(address) == expected


@pytest.mark.parametrize("address", ["9100", "host:", "1.2.3.4:99999", "::1:9100", "a b:1"])
def test_bad_listen_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        split_listen_address(address)


# --- refusals through the real entry point: one line, exit code 2 ---------------------------------


def test_unknown_key_names_key_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "web:\n  listen-address: :9100\n  listen-adress: :9200\n")
    line = refuse(["run", "--no-logs", f"--config={config}"], capsys)
    assert f"{config}:3:" in line
    assert "web.listen-adress" in line


def test_unknown_collector_in_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "collector:\n  nosuchcollector:\n    enabled: true\n")
    line = refuse(["run", "--no-logs", f"--config={config}"], capsys)
    assert f"{config}:3:" in line
    assert "collector.nosuchcollector" in line


def test_bad_regex_in_file_names_key_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], regex_collector: type[Collector]
) -> None:
    config = write(tmp_path, "collector:\n  testregex:\n    names-include: '(unclosed'\n")
    line = refuse(["metrics", f"--config={config}"], capsys)
    assert f"{config}:3: collector.testregex.names-include: invalid regular expression" in line


def test_bad_regex_flag_names_flag(
    capsys: pytest.CaptureFixture[str], regex_collector: type[Collector]
) -> None:
    line = refuse(["run", "--no-logs", "--collector.testregex.names-include=[z-a]"], capsys)
    assert "--collector.testregex.names-include: invalid regular expression" in line


def test_bad_yaml_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "web:\n  listen-address: :9100\n  telemetry-path: [/metrics\nlog: {}\n")
    line = refuse(["run", "--no-logs", f"--config={config}"], capsys)
    assert f"{config}:" in line and "invalid YAML" in line
    assert line.split(f"{config}:")[1].split(":")[0] in {"3", "4"}


def test_missing_config_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = refuse(["run", "--no-logs", f"--config={tmp_path / 'absent.yaml'}"], capsys)
    assert "absent.yaml" in line and "cannot read config file" in line


def test_bad_choice_names_key_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path, "log:\n  level: verbose\n")
    line = refuse(["run", "--no-logs", f"--config={config}"], capsys)
    assert f"{config}:2: log.level: expected one of debug, info, warn, error" in line


def test_bad_listen_address_flag(capsys: pytest.CaptureFixture[str]) -> None:
    line = refuse(["run", "--no-logs", "--web.listen-address=9100"], capsys)
    assert "--web.listen-address" in line


def test_unknown_flag_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    line = refuse(["run", "--web.listen-adress=:9100"], capsys)
    assert "unrecognized arguments: --web.listen-adress=:9100" in line


def test_abbreviated_flags_are_not_guessed(capsys: pytest.CaptureFixture[str]) -> None:
    line = refuse(["run", "--web.listen=:9100"], capsys)
    assert "--web.listen" in line


def test_nothing_to_run_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    line = refuse(["run", "--no-logs", "--no-metrics"], capsys)
    assert "nothing to run" in line


def test_bad_logs_section_is_refused_before_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(
        tmp_path,
        """
        web:
          listen-address: 127.0.0.1:0
        logs:
          state_dir: /tmp
          sinks:
            - type: no-such-sink
    """,
    )
    line = refuse(["run", f"--config={config}"], capsys)
    assert f"{config}:" in line and "logs.sinks" in line
