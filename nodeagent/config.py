"""Agent configuration: one table of settings fed by defaults, a YAML file and command-line flags.

Every setting has a dotted key (``web.listen-address``) that is both its flag (``--web.listen-address``)
and its place in the YAML file (``web: {listen-address: ...}``; ``_`` and ``-`` are interchangeable in
YAML keys). Precedence: built-in default < config file < command line. Errors name the key, and the file
and line where there is one, and the agent refuses to start (exit code 2).

The ``logs:`` section is free-form here and validated by :mod:`nodeagent.logs.config`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Sections of the YAML file that are not flat settings but structured documents of their own.
STRUCTURED_SECTIONS = ("logs",)


class ConfigError(Exception):
    """A configuration problem, reported as ``file:line: key: message``."""

    def __init__(
        self, message: str, *, key: str | None = None, file: str | None = None, line: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class LineDict(dict):
    """A mapping loaded from YAML that remembers the line (1-based) of each key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}
        self.line: int | None = None
        self.file: str | None = None

    def line_of(self, key: Any) -> int | None:
        return self.key_lines.get(key, self.line)

    def error(self, key: Any, message: str, *, prefix: str = "") -> ConfigError:
        """A ConfigError pointing at ``key`` of this mapping."""
        full_key = f"{prefix}.{key}" if prefix else str(key)
        return ConfigError(message, key=full_key, file=self.file, line=self.line_of(key))


class LineList(list):
    """A sequence loaded from YAML that remembers its line and each item's line."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line: int | None = None
        self.item_lines: list[int] = []
        self.file: str | None = None


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.file = loader.source_name
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise ConfigError(
                "duplicate key", key=str(key), file=loader.source_name, line=key_node.start_mark.line + 1
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    result.file = loader.source_name
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load_yaml(text: str, source_name: str = "<config>") -> Any:
    """Parse one YAML document; mappings come back as :class:`LineDict`, sequences as :class:`LineList`."""
    loader = _LineLoader(text)
    loader.source_name = source_name
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc}", file=source_name, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=source_name) from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", file=str(path)) from None
    return load_yaml(text, str(path))


# ---------------------------------------------------------------------------------------------------
# Value parsers shared by flags and YAML values. Each takes the raw value (a string from the command
# line, or any YAML scalar) and returns the typed value or raises ValueError with a short reason.


def parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def parse_str(raw: Any) -> str:
    if isinstance(raw, (dict, list)):
        raise ValueError(f"expected a string, got a {type(raw).__name__}")
    return "" if raw is None else str(raw)


def parse_int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected an integer, got {raw!r}")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"expected an integer, got {raw!r}") from None


def parse_regex(raw: Any) -> str:
    """A regular expression, kept as text; compiled here only to reject bad ones early."""
    text = parse_str(raw)
    try:
        re.compile(text)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {text!r}: {exc}") from None
    return text


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(raw: Any) -> float:
    """``1.5s``, ``500ms``, ``1m30s`` or a plain number of seconds; returns seconds."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        if raw < 0:
            raise ValueError("duration must not be negative")
        return float(raw)
    text = parse_str(raw).strip()
    if _DURATION.match(text):
        return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a duration such as 5s or 500ms, got {raw!r}") from None
    if value < 0:
        raise ValueError("duration must not be negative")
    return value


def parse_choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        text = parse_str(raw)
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {raw!r}")
        return text

    return parse


# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One configurable value: its dotted key is its flag name and its YAML path."""

    key: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = parse_str
    is_switch: bool = False  # a boolean that gets --KEY / --no-KEY flags
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return f"--{self.key}"


@dataclass
class Settings:
    """The resolved values of every setting, plus where each came from (for messages)."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    structured: dict[str, Any] = field(default_factory=dict)  # raw STRUCTURED_SECTIONS from the file
    config_file: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def normalize_key(key: str) -> str:
    return key.replace("_", "-")


def flatten_config(data: Any, file: str) -> Iterator[tuple[str, Any, LineDict, Any]]:
    """Yield (dotted key, value, parent mapping, raw key) for every leaf of a config document."""

    def walk(node: LineDict, prefix: str) -> Iterator[tuple[str, Any, LineDict, Any]]:
        for raw_key, value in node.items():
            if not isinstance(raw_key, str):
                raise node.error(raw_key, "keys must be strings", prefix=prefix)
            key = f"{prefix}.{normalize_key(raw_key)}" if prefix else normalize_key(raw_key)
            if isinstance(value, LineDict):
                yield from walk(value, key)
            else:
                yield key, value, node, raw_key

    if data is None:
        return
    if not isinstance(data, LineDict):
        raise ConfigError(
            "the config file must be a YAML mapping", file=file, line=getattr(data, "line", None)
        )
    yield from walk(data, "")


def resolve_settings(
    table: dict[str, Setting], config_file: str | None, flag_values: dict[str, Any]
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
        data = load_yaml_file(config_file)
        if isinstance(data, LineDict):
            for section in STRUCTURED_SECTIONS:
                if section in data:
                    settings.structured[section] = data.pop(section)
        for key, raw, parent, raw_key in flatten_config(data, config_file):
            setting = table.get(key)
            if setting is None and key.endswith(".enabled"):
                setting = table.get(key[: -len(".enabled")])
            if setting is None:
                raise parent.error(raw_key, f"unknown setting {key!r}")
            try:
                settings.values[setting.key] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(str(exc), key=key, file=config_file, line=parent.line_of(raw_key)) from None
            settings.origins[setting.key] = f"{config_file}:{parent.line_of(raw_key)}"
    for key, raw in flag_values.items():
        if raw is None:
            continue
        setting = table[key]
        try:
            settings.values[key] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(str(exc), key=setting.flag) from None
        settings.origins[key] = "command line"
    return settings
