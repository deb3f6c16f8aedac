"""The command line: ``nodeagent run | metrics | version | check-placement``.

``run`` and ``metrics`` take one flag per setting: the core ones from :mod:`nodeagent.config.core` and the
collector ones generated from the collector registry, with node_exporter's names. Exit codes: 0 done,
1 failure while running, 2 refused configuration (bad flag, bad config file, address in use).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from collections.abc import Sequence
from typing import NoReturn

from nodeagent import __version__
from nodeagent.config import (
    ConfigError,
    Setting,
    Settings,
    parse_bool,
    parse_optional_bool,
    resolve_settings,
    settings_table,
)

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
SETTINGS_COMMANDS = ("run", "metrics")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        # One prefix for every command's errors (`nodeagent run: ...` would differ by command).
        self.exit(EXIT_CONFIG, f"nodeagent: error: {message} (see {self.prog} --help)\n")


def _is_boolean(setting: Setting) -> bool:
    return setting.is_switch or setting.parse in (parse_bool, parse_optional_bool)


def add_setting_arguments(parser: argparse.ArgumentParser, table: dict[str, Setting]) -> None:
    """One flag per setting (``--KEY VALUE``; booleans: ``--KEY``, ``--KEY=false``, ``--no-KEY``)."""
    core = parser.add_argument_group("agent")
    collectors = parser.add_argument_group(
        "collectors (--collector.NAME / --no-collector.NAME switch one on or off)"
    )
    core.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file with any of these settings (and the logs section); flags override it.",
    )
    for setting in table.values():
        group = collectors if setting.key.startswith("collector.") else core
        text = setting.help.replace("%", "%%")
        if _is_boolean(setting):
            if setting.default is not None:
                text += f" (default: {str(setting.default).lower()})"
            group.add_argument(
                setting.flag,
                dest=setting.key,
                nargs="?",
                const=True,
                default=None,
                metavar="BOOL",
                help=f"{text} --no-{setting.key} turns it off.",
            )
            group.add_argument(
                f"--no-{setting.key}",
                dest=setting.key,
                action="store_const",
                const=False,
                help=argparse.SUPPRESS,
            )
        else:
            if setting.default not in (None, ""):
                text += f" (default: {str(setting.default).replace('%', '%%')})"
            metavar = setting.metavar or setting.key.rsplit(".", 1)[-1].upper()
            group.add_argument(setting.flag, dest=setting.key, default=None, metavar=metavar, help=text)


def build_parser(command: str | None = None, table: dict[str, Setting] | None = None) -> _Parser:
    """The parser; collector flags (and the placement checker's) are added only for their command."""
    parser = _Parser(
        prog="nodeagent",
        allow_abbrev=False,
        description="Node agent: node_exporter-compatible metrics and a log shipper, "
        "plus a DaemonSet placement checker.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run", allow_abbrev=False, help="Run the agent: metrics server and log shipper."
    )
    metrics = commands.add_parser(
        "metrics", allow_abbrev=False, help="Print one scrape (text format) to stdout and exit."
    )
    commands.add_parser("version", help="Print the version and exit.")
    placement = commands.add_parser(
        "check-placement",
        allow_abbrev=False,
        help="Check where a DaemonSet's pods can run (see check-placement --help).",
    )
    if command in SETTINGS_COMMANDS:
        if table is None:
            table = settings_table()
        add_setting_arguments(run if command == "run" else metrics, table)
    if command == "check-placement":
        from nodeagent.placement import cli as placement_cli  # lazily: never a dependency of `run`

        placement_cli.add_arguments(placement)
    return parser


def version_text() -> str:
    return f"nodeagent {__version__} ({platform.python_implementation()} {platform.python_version()})"


def resolve_from_args(args: argparse.Namespace, table: dict[str, Setting]) -> Settings:
    """Settings from defaults < ``--config`` file < flags; raises ConfigError."""
    values = vars(args)
    return resolve_settings(table, values.get("config"), {key: values.get(key) for key in table})


def _refuse(message: object) -> int:
    print(f"nodeagent: error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _fail(message: object) -> int:
    print(f"nodeagent: error: {message}", file=sys.stderr)
    return EXIT_FAILURE


def cmd_run(settings: Settings) -> int:
    from nodeagent.agent import StartupError, plan_agent, run_agent
    from nodeagent.agentlog import setup_logging
    from nodeagent.server import ListenError

    with setup_logging(settings["log.level"], settings["log.format"]):
        try:
            plan = plan_agent(settings)
        except ConfigError as exc:
            return _refuse(exc)
        except StartupError as exc:
            return _fail(exc)
        try:
            return asyncio.run(run_agent(plan))
        except ListenError as exc:
            return _refuse(exc)


def cmd_metrics(settings: Settings) -> int:
    from nodeagent.agent import node_collectors
    from nodeagent.agentlog import setup_logging
    from nodeagent.metrics.scrape import Scraper

    with setup_logging(settings["log.level"], settings["log.format"], background=False):
        try:
            collectors = node_collectors(settings)
        except ConfigError as exc:
            return _refuse(exc)
        body = Scraper(collectors, exporter_metrics=not settings["web.disable-exporter-metrics"]).render()
    try:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    except BrokenPipeError:  # `nodeagent metrics | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def cmd_check_placement(args: argparse.Namespace) -> int:
    from nodeagent.agentlog import setup_logging
    from nodeagent.placement import cli as placement_cli

    with setup_logging(background=False):
        return placement_cli.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``nodeagent`` and ``python -m nodeagent``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    table = None
    if command in SETTINGS_COMMANDS:
        table = settings_table()
    try:
        parser = build_parser(command, table)
    except ImportError as exc:  # only check-placement imports anything optional here
        return _fail(f"{command} is not available: {exc}")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    if args.command == "version":
        print(version_text())
        return EXIT_OK
    if args.command == "check-placement":
        return cmd_check_placement(args)
    assert table is not None
    try:
        settings = resolve_from_args(args, table)
    except ConfigError as exc:
        return _refuse(exc)
    if args.command == "run":
        return cmd_run(settings)
    return cmd_metrics(settings)
