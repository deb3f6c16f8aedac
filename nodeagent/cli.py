"""The command line: ``nodeagent [run] | metrics | version | check-placement``.

``run`` and ``metrics`` take one flag per setting: the core ones from :mod:`nodeagent.config.core` and the
collector ones generated from the collector registry, with node_exporter's names. Without a command,
``nodeagent FLAGS`` is ``nodeagent run FLAGS``, so node_exporter's command lines (a DaemonSet's args,
Debian's ``ARGS``) run unchanged; node_exporter's other flags (aliases, collectors we lack) are accepted as
:mod:`nodeagent.config.upstream_flags` says. Exit codes: 0 done, 1 failure while running, 2 refused
configuration (bad flag, bad config file, address in use).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

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
from nodeagent.config.compat import (
    apply_upstream_flags,
    check_exclusive_pairs,
    check_host_paths,
    extra_flags,
    repeatable,
)
from nodeagent.config.upstream_flags import Kind

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
SETTINGS_COMMANDS = ("run", "metrics")
TOP_LEVEL_FLAGS = ("-h", "--help", "--version")
UPSTREAM_DEST = "upstream:"  # argparse destination prefix of node_exporter flags that are not settings


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (no usage dump) and exits 2."""

    def error(self, message: str) -> NoReturn:
        # One prefix for every command's errors (`nodeagent run: ...` would differ by command).
        self.exit(EXIT_CONFIG, f"nodeagent: error: {message} (see {self.prog} --help)\n")


def is_boolean(setting: Setting) -> bool:
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
        if is_boolean(setting):
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
            if setting.default not in (None, "", ()):
                text += f" (default: {str(setting.default).replace('%', '%%')})"
            metavar = setting.metavar or setting.key.rsplit(".", 1)[-1].upper()
            action = "append" if repeatable(setting.key) else "store"
            group.add_argument(
                setting.flag, dest=setting.key, default=None, metavar=metavar, help=text, action=action
            )
    for name, flag in extra_flags(table).items():  # accepted, documented in the README, not in --help
        dest = f"{UPSTREAM_DEST}{name}"
        if flag.kind is Kind.BOOL:
            parser.add_argument(f"--{name}", dest=dest, nargs="?", const="true", help=argparse.SUPPRESS)
            parser.add_argument(
                f"--no-{name}", dest=dest, action="store_const", const="false", help=argparse.SUPPRESS
            )
        else:
            action = "append" if flag.kind is Kind.STRINGS else "store"
            parser.add_argument(f"--{name}", dest=dest, action=action, help=argparse.SUPPRESS)


def build_parser(command: str | None = None, table: dict[str, Setting] | None = None) -> _Parser:
    """The parser; collector flags (and the placement checker's) are added only for their command."""
    parser = _Parser(
        prog="nodeagent",
        allow_abbrev=False,
        description="Node agent: node_exporter-compatible metrics and a log shipper, "
        "plus a DaemonSet placement checker.",
        epilog="Without a COMMAND, nodeagent runs the agent: 'nodeagent [FLAGS]' is 'nodeagent run [FLAGS]' "
        "and takes node_exporter's flags (see 'nodeagent run --help').",
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


def _flag_value(raw: Any) -> Any:
    """A repeatable flag's values as argparse collected them: one value as such, several as a list (for
    the setting's parser to take, or to refuse when it takes one value)."""
    if isinstance(raw, list) and len(raw) == 1:
        return raw[0]
    return raw


def resolve_from_args(args: argparse.Namespace, table: dict[str, Setting]) -> Settings:
    """Settings from defaults < ``--config`` file < flags, node_exporter's flags applied and its
    include/exclude refusals checked; raises ConfigError."""
    from nodeagent.metrics.registry import enabled_collectors

    values = vars(args)
    flag_values = {key: _flag_value(values.get(key)) for key in table}
    upstream = {
        name: values[f"{UPSTREAM_DEST}{name}"]
        for name in extra_flags(table)
        if values.get(f"{UPSTREAM_DEST}{name}") is not None
    }
    notes = apply_upstream_flags(table, flag_values, upstream)
    settings = resolve_settings(table, values.get("config"), flag_values)
    settings.notes.extend(notes)
    enabled = enabled_collectors(settings.values, settings["collector.disable-defaults"])
    check_exclusive_pairs(settings, upstream, enabled)
    return settings


def log_notes(settings: Settings) -> None:
    """What the configuration asked that nodeagent reads differently, once, on the agent's log."""
    logger = logging.getLogger("nodeagent.config")
    for note in settings.notes:
        logger.log(note.level, note.message, extra=note.fields)


def _refuse(message: object) -> int:
    print(f"nodeagent: error: {message}", file=sys.stderr)
    return EXIT_CONFIG


def _fail(message: object) -> int:
    print(f"nodeagent: error: {message}", file=sys.stderr)
    return EXIT_FAILURE


def cmd_run(settings: Settings, reread: Callable[[], Settings] | None = None) -> int:
    """Run the agent; ``reread`` gives the settings again (same flags, config file read anew) for SIGHUP."""
    from nodeagent import runtime

    runtime.skip_heavy_extensions()  # before aiohttp (and so frozenlist) is first imported
    runtime.import_aiohttp()
    from nodeagent.agent import StartupError, check_state_dir, plan_agent, run_agent
    from nodeagent.agentlog import setup_logging
    from nodeagent.server import ListenError

    runtime.limit_malloc_arenas()  # before the logging thread and the pools start
    with setup_logging(settings["log.level"], settings["log.format"]):
        log_notes(settings)
        try:
            plan = plan_agent(settings)
            check_state_dir(plan)
        except ConfigError as exc:
            return _refuse(exc)
        except StartupError as exc:
            return _fail(exc)
        replan = (lambda: plan_agent(reread())) if reread is not None else None
        try:
            return asyncio.run(run_agent(plan, replan=replan))
        except ListenError as exc:
            return _refuse(exc)


def cmd_metrics(settings: Settings) -> int:
    from nodeagent.agent import node_collectors
    from nodeagent.agentlog import setup_logging
    from nodeagent.metrics.scrape import Scraper

    with setup_logging(settings["log.level"], settings["log.format"], background=False):
        log_notes(settings)
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
    if command is None and not (argv and argv[0] in TOP_LEVEL_FLAGS):
        command, argv = "run", ["run", *argv]  # node_exporter's command line (or Debian's empty ARGS)
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
        check_host_paths(settings)
    except ConfigError as exc:
        return _refuse(exc)
    if args.command == "run":

        def reread() -> Settings:
            settings = resolve_from_args(args, table)
            check_host_paths(settings)
            log_notes(settings)
            return settings

        return cmd_run(settings, reread)
    return cmd_metrics(settings)
