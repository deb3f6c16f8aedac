"""node_exporter's command line on top of the settings table: aliases, flags we only accept, its refusals.

The rows live in :mod:`nodeagent.config.upstream_flags`; this module applies them to one command line.
:func:`apply_upstream_flags` runs before the settings are resolved (an alias sets its setting; a flag we do
not provide is checked and noted); :func:`check_exclusive_pairs` and
:func:`check_host_paths` run after, and refuse what node_exporter refuses before it serves: an
include/exclude pair given together for a collector that is on, and a missing ``--path.procfs`` /
``--path.sysfs``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from nodeagent.config.errors import ConfigError
from nodeagent.config.schema import Field
from nodeagent.config.settings import Note, Setting, Settings
from nodeagent.config.upstream_flags import (
    DEPRECATED_COLLECTORS,
    EXCLUSIVE_PAIRS,
    UPSTREAM_COLLECTORS,
    Disposition,
    Flag,
    Kind,
    all_flags,
    collector_of,
    disposition,
)
from nodeagent.config.values import parse_bool, parse_duration, parse_int, parse_str

# How a value of a flag we only accept is checked (node_exporter refuses a bad one the same way).
_CHECKS = {
    Kind.BOOL: parse_bool,
    Kind.INT: parse_int,
    Kind.DURATION: parse_duration,
    Kind.STRING: parse_str,
    Kind.STRINGS: parse_str,
}
HOST_PATHS = ("path.procfs", "path.sysfs")  # node_exporter opens these when its collectors are built


def extra_flags(table: dict[str, Setting]) -> dict[str, Flag]:
    """node_exporter flags that are not settings of ours: they need arguments of their own."""
    return {name: flag for name, flag in all_flags().items() if name not in table}


def repeatable(key: str) -> bool:
    """Whether node_exporter takes this flag several times (``--web.listen-address``, ...)."""
    flag = all_flags().get(key)
    return flag is not None and flag.kind is Kind.STRINGS


def as_written(flag: Flag, raw: Any) -> str:
    if flag.kind is Kind.BOOL:
        return f"--{flag.name}" if parse_bool(raw) else f"--no-{flag.name}"
    return f"--{flag.name}"


def _values(raw: Any) -> list[Any]:
    return list(raw) if isinstance(raw, list) else [raw]


def apply_upstream_flags(
    table: dict[str, Setting], flag_values: dict[str, Any], upstream: dict[str, Any]
) -> list[Note]:
    """Fold node_exporter-only flags (name -> raw value, given ones only) into ``flag_values``.

    An alias sets its setting (both given: refused, as node_exporter does); a flag we only accept has its
    value checked. Returns the startup notes; raises ConfigError.
    """
    notes: list[Note] = []
    not_provided: list[str] = []
    already_off: list[str] = []
    deprecated_collectors: dict[str, list[str]] = {}
    flags = all_flags()
    for name, raw in upstream.items():
        flag = flags[name]
        for value in _values(raw):
            Field(name, parse=_CHECKS[flag.kind]).read(value)
        what = disposition(flag, table)
        if what is Disposition.ALIAS:
            assert flag.alias_of is not None
            if flag_values.get(flag.alias_of) is not None:
                raise ConfigError(f"--{name} and --{flag.alias_of} are mutually exclusive")
            flag_values[flag.alias_of] = raw
            if flag.deprecated:
                notes.append(
                    Note(
                        logging.WARNING,
                        f"--{name} is deprecated (node_exporter removes it in 2.0), use --{flag.alias_of}",
                    )
                )
        elif what is Disposition.IGNORED:
            notes.append(Note(logging.DEBUG, f"--{name} is accepted and has no effect: {flag.ignored}"))
        else:
            collector = collector_of(flag)
            written = as_written(flag, raw)
            if collector in DEPRECATED_COLLECTORS:
                deprecated_collectors.setdefault(collector, []).append(written)
            elif flag.name == f"collector.{collector}" and not parse_bool(raw):
                already_off.append(written)
            else:
                not_provided.append(written)
    lines = [
        (
            logging.WARNING,
            f"the {collector} collector is deprecated in node_exporter and not provided by nodeagent; "
            "its flags are accepted and ignored",
            given,
        )
        for collector, given in deprecated_collectors.items()
    ]
    lines.append(
        (
            logging.WARNING,
            "node_exporter flags accepted but not provided by nodeagent; they have no effect",
            not_provided,
        )
    )
    lines.append((logging.INFO, "collectors switched off that nodeagent does not provide", already_off))
    notes.extend(Note(level, message, {"flags": ",".join(given)}) for level, message, given in lines if given)
    return notes


def _upstream_enabled(settings: Settings, upstream: dict[str, Any], enabled: list[str]) -> set[str]:
    """Collectors on by node_exporter's rules: ours as resolved, the others by their switch or default."""
    on = set(enabled)
    for name, default in UPSTREAM_COLLECTORS.items():
        if f"collector.{name}" in settings.values:
            continue  # one of ours: ``enabled`` says
        explicit = upstream.get(f"collector.{name}")
        if explicit is not None:
            if parse_bool(explicit):
                on.add(name)
        elif default and not settings.get("collector.disable-defaults"):
            on.add(name)
    return on


def _given(key: str, settings: Settings, upstream: dict[str, Any]) -> bool:
    if key in settings.values:
        return settings.origins.get(key, "default") != "default" and bool(settings.values[key])
    return bool(upstream.get(key))


def check_exclusive_pairs(settings: Settings, upstream: dict[str, Any], enabled: list[str]) -> None:
    """Refuse an include/exclude pair given together for a collector that is on, as node_exporter does.

    ``enabled``: the collectors of ours that are on; ``upstream``: the node_exporter-only flags given.
    """
    if not settings.get("metrics", True):
        return
    on = _upstream_enabled(settings, upstream, enabled)
    for collector, exclude, include in EXCLUSIVE_PAIRS:
        if collector in on and _given(exclude, settings, upstream) and _given(include, settings, upstream):
            raise ConfigError(f"--{exclude} and --{include} are mutually exclusive")


def check_host_paths(settings: Settings) -> None:
    """Refuse a ``--path.procfs`` / ``--path.sysfs`` that is not a directory when node collectors run
    (node_exporter cannot open its procfs/sysfs and stops); raises ConfigError."""
    if not settings.get("metrics", True):
        return
    for key in HOST_PATHS:
        path = settings.get(key)
        if path is None:
            continue
        if not os.path.exists(path):
            raise ConfigError(f"{path}: no such file or directory", key=key)
        if not os.path.isdir(path):
            raise ConfigError(f"{path}: not a directory", key=key)
