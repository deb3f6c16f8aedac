"""Configuration: one package for the YAML loader, the value parsers, the schema and the settings.

- :mod:`~nodeagent.config.loader`: YAML whose mappings and lists remember file and line;
- :mod:`~nodeagent.config.values`: every value parser (bool, int with bounds, size, duration, ...);
- :mod:`~nodeagent.config.schema`: :class:`Field` and :class:`Section`, the one way to declare options;
- :mod:`~nodeagent.config.errors`: :class:`ConfigError`, shown as ``file:line: key: message`` (exit 2);
- :mod:`~nodeagent.config.settings` and :mod:`~nodeagent.config.core`: the flat settings table (core
  settings here, collector options generated from the registry) resolved from defaults, file and flags;
- :mod:`~nodeagent.config.logs`: the ``logs:`` section (imported on its own: it pulls in the sinks).
"""

from nodeagent.config.core import CORE_SETTINGS, node_name, settings_table
from nodeagent.config.errors import ConfigError
from nodeagent.config.loader import LineDict, LineList, load_yaml, load_yaml_file
from nodeagent.config.schema import REQUIRED, UNSET, Field, Invalid, ListOf, Section, normalize_key
from nodeagent.config.settings import STRUCTURED_SECTIONS, Setting, Settings, resolve_settings
from nodeagent.config.values import (
    bounded,
    non_negative_int,
    parse_absolute_path,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_headers,
    parse_http_url,
    parse_int,
    parse_listen_address,
    parse_nonempty_str,
    parse_optional_bool,
    parse_regex,
    parse_size,
    parse_str,
    parse_string_list,
    parse_url_path,
    positive_duration,
    positive_int,
    positive_size,
    split_listen_address,
)

__all__ = [
    "CORE_SETTINGS",
    "REQUIRED",
    "STRUCTURED_SECTIONS",
    "UNSET",
    "ConfigError",
    "Field",
    "Invalid",
    "LineDict",
    "LineList",
    "ListOf",
    "Section",
    "Setting",
    "Settings",
    "bounded",
    "load_yaml",
    "load_yaml_file",
    "node_name",
    "non_negative_int",
    "normalize_key",
    "parse_absolute_path",
    "parse_bool",
    "parse_choice",
    "parse_duration",
    "parse_headers",
    "parse_http_url",
    "parse_int",
    "parse_listen_address",
    "parse_nonempty_str",
    "parse_optional_bool",
    "parse_regex",
    "parse_size",
    "parse_str",
    "parse_string_list",
    "parse_url_path",
    "positive_duration",
    "positive_int",
    "positive_size",
    "resolve_settings",
    "settings_table",
    "split_listen_address",
]
