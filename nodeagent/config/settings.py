"""Resolving the flat settings table: built-in default < config file < command line.

Every setting is a :class:`~nodeagent.config.schema.Field` whose dotted name (``web.listen-address``) is
both its flag (``--web.listen-address``) and its place in the YAML file (``web: {listen-address: ...}``).
A switch may also be written as a mapping with ``enabled`` (``collector: {cpu: {enabled: false}}``), next
to that collector's options. Errors name the key, and the file and line where there is one; the agent
refuses to start (exit code 2). Sections that are documents of their own (``logs:``) are handed over
as loaded, lines included.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from nodeagent.config.environment import expand_environment
from nodeagent.config.errors import ConfigError
from nodeagent.config.loader import LineDict, load_yaml_file
from nodeagent.config.schema import Field, mapping_entries, normalize_key

# Sections of the YAML file that are not flat settings but structured documents of their own.
STRUCTURED_SECTIONS = ("logs",)
Setting = Field  # a row of the settings table


@dataclass(frozen=True)
class Note:
    """A line for the agent's log at startup about how the configuration was read (a deprecated flag, a
    node_exporter flag nodeagent does not provide); logged once the log is set up."""

    level: int  # a logging level
    message: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Settings:
    """The resolved values of every setting, plus where each came from (for messages)."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    structured: dict[str, Any] = field(default_factory=dict)  # raw STRUCTURED_SECTIONS from the file
    config_file: str | None = None
    notes: list[Note] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _leaves(data: LineDict, prefix: str) -> Iterator[tuple[str, Any, LineDict, Any]]:
    """(normalised dotted key, value, parent mapping, key as written) for every leaf of the document."""
    for raw_key, norm, value in mapping_entries(data):
        key = f"{prefix}.{norm}" if prefix else norm
        if isinstance(value, LineDict):
            yield from _leaves(value, key)
        else:
            yield key, value, data, raw_key


def _known_below(table: dict[str, Field], prefix: str) -> str:
    """The keys the file may use next to an unknown one (one level below ``prefix``)."""
    start = f"{normalize_key(prefix)}." if prefix else ""
    below = {"enabled"} if prefix in table and table[prefix].is_switch else set()
    below |= {
        normalize_key(key)[len(start) :].split(".")[0]
        for key in table
        if normalize_key(key).startswith(start)
    }
    return ", ".join(sorted(below))


def _read_file(table: dict[str, Field], settings: Settings, config_file: str) -> None:
    data = expand_environment(load_yaml_file(config_file), os.environ)
    if data is None:
        return
    if not isinstance(data, LineDict):
        raise ConfigError(
            "the config file must be a YAML mapping", file=config_file, line=getattr(data, "line", None)
        )
    for section in STRUCTURED_SECTIONS:
        if section in data:
            settings.structured[section] = data.pop(section)
    by_key = {normalize_key(key): setting for key, setting in table.items()}
    for key, raw, parent, raw_key in _leaves(data, ""):
        setting = by_key.get(key)
        if setting is None and key.endswith(".enabled"):
            setting = by_key.get(key.removesuffix(".enabled"))
        line = parent.line_of(raw_key)
        if setting is None:
            prefix = key.rpartition(".")[0]
            while prefix and not _known_below(table, prefix):  # up to the level where the key went wrong
                prefix = prefix.rpartition(".")[0]
            where = f" under {prefix}" if prefix else ""
            message = f"unknown setting (known{where}: {_known_below(table, prefix)})"
            raise ConfigError(message, key=key, file=config_file, line=line)
        if raw is None:  # null: the default
            continue
        settings.values[setting.key] = Field(key, parse=setting.parse).read(raw, file=config_file, line=line)
        settings.origins[setting.key] = f"{config_file}:{line}"


def resolve_settings(
    table: dict[str, Field], config_file: str | None, flag_values: dict[str, Any]
) -> Settings:
    """Combine defaults, the config file and flags (already parsed by argparse, raw strings or bools).

    Raises ConfigError naming the key (and file and line) of the first bad value or unknown key.
    """
    settings = Settings(
        values={k: s.default for k, s in table.items()},
        origins=dict.fromkeys(table, "default"),
        config_file=config_file,
    )
    if config_file:
        _read_file(table, settings, config_file)
    for key, raw in flag_values.items():
        if raw is None:
            continue
        setting = table[key]
        settings.values[key] = Field(setting.flag, parse=setting.parse).read(raw)
        settings.origins[key] = "command line"
    return settings
