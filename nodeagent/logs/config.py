"""The ``logs:`` section: inputs (which files, how to read them), sinks, and delivery tuning.

:func:`parse_logs_config` turns the YAML mapping (a :class:`~nodeagent.config.LineDict`, so errors can
name file and line) into a frozen :class:`LogsConfig`. Keys accept ``_`` and ``-`` alike. What the
section leaves out comes from the embedded default (``default.yaml`` next to this module): with no
section at all the agent tails the usual host and container logs to stdout.

The shipper never ingests its own output: every file sink's path (and its rotated siblings) is excluded
from every input, and so is the agent's own container log when the pod is known from the environment
(``NODEAGENT_POD_NAME`` + ``NODEAGENT_POD_NAMESPACE``, optionally ``NODEAGENT_POD_UID``, set through the
downward API); otherwise a stdout sink inside a pod would read back its own lines from
/var/log/pods or /var/log/containers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nodeagent.config import (
    ConfigError,
    LineDict,
    LineList,
    load_yaml,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_int,
    parse_regex,
    parse_str,
)
from nodeagent.logs.parsers import FORMATS, MultilineConfig

DEFAULT_YAML = Path(__file__).with_name("default.yaml")
READ_FROM = ("head", "tail")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
}


@dataclass(frozen=True)
class InputConfig:
    """One group of files read the same way."""

    name: str
    paths: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    format: str = "auto"
    read_from: str = "head"  # where to start in a file that exists when the agent starts
    multiline: MultilineConfig | None = None
    max_line_bytes: int = 256 * 1024
    max_record_bytes: int = 1024 * 1024
    partial_line_timeout: float = 5.0


@dataclass(frozen=True)
class SinkSpec:
    """A sink as configured: ``type``, a unique ``name`` and the remaining options."""

    name: str
    type: str
    options: Mapping[str, Any]

    def as_spec(self) -> dict[str, Any]:
        """The mapping handed to :func:`nodeagent.logs.sinks.make_sink`."""
        return {"type": self.type, **self.options}


@dataclass(frozen=True)
class LogsConfig:
    enabled: bool
    state_dir: Path
    inputs: tuple[InputConfig, ...]
    sinks: tuple[SinkSpec, ...]
    batch_max_records: int = 5000
    batch_max_bytes: int = 2 * 1024 * 1024
    batch_timeout: float = 1.0
    buffer_max_bytes: int = 8 * 1024 * 1024
    checkpoint_interval: float = 0.0  # 0: commit after every acknowledged batch
    rescan_interval: float = 60.0  # with file events; without them at most RESCAN_WITHOUT_EVENTS
    poll_interval: float = 1.0
    max_open_files: int = 1024
    close_inactive: float = 300.0
    rotate_wait: float = 5.0
    deleted_file_timeout: float = 60.0
    retry_initial_backoff: float = 0.5
    retry_max_backoff: float = 30.0
    drain_timeout: float = 3.0
    source: str | None = field(default=None, compare=False)

    @property
    def checkpoint_path(self) -> Path:
        return self.state_dir / "logs-checkpoints.json"


def default_state_dir(environ: Mapping[str, str] | None = None, *, is_root: bool | None = None) -> Path:
    """/var/lib/nodeagent for root, else ``$XDG_STATE_HOME/nodeagent`` or ``~/.local/state/nodeagent``."""
    environ = os.environ if environ is None else environ
    if is_root is None:
        is_root = os.geteuid() == 0
    if is_root:
        return Path("/var/lib/nodeagent")
    xdg = environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "nodeagent"
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".local" / "state" / "nodeagent"


def parse_size(raw: Any) -> int:
    """``262144``, ``256KiB``, ``1MiB``, ``2M`` (binary), ``1MB`` (decimal) -> bytes."""
    if isinstance(raw, bool):
        raise ValueError(f"expected a size such as 256KiB, got {raw!r}")
    if isinstance(raw, int):
        value = raw
    else:
        match = _SIZE.match(parse_str(raw))
        if not match:
            raise ValueError(f"expected a size such as 262144, 256KiB or 1MiB, got {raw!r}")
        unit = match[2].lower() if match[2] else None
        value = int(float(match[1]) * _SIZE_UNITS[unit])
    if value < 0:
        raise ValueError("size must not be negative")
    return value


def _positive(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_positive(raw: Any) -> Any:
        value = parse(raw)
        if value <= 0:
            raise ValueError(f"must be greater than 0, got {raw!r}")
        return value

    return parse_positive


def _norm(key: Any) -> Any:
    return key.replace("-", "_") if isinstance(key, str) else key


# Top-level tuning keys: name -> parser (defaults are the LogsConfig field defaults).
_TUNING: dict[str, Callable[[Any], Any]] = {
    "batch_max_records": _positive(parse_int),
    "batch_max_bytes": _positive(parse_size),
    "batch_timeout": parse_duration,
    "buffer_max_bytes": _positive(parse_size),
    "checkpoint_interval": parse_duration,
    "rescan_interval": _positive(parse_duration),
    "poll_interval": _positive(parse_duration),
    "max_open_files": _positive(parse_int),
    "close_inactive": _positive(parse_duration),
    "rotate_wait": parse_duration,
    "deleted_file_timeout": parse_duration,
    "retry_initial_backoff": _positive(parse_duration),
    "retry_max_backoff": _positive(parse_duration),
    "drain_timeout": parse_duration,
}
_TOP_KEYS = {"enabled", "state_dir", "inputs", "sinks", *_TUNING}
_INPUT_KEYS = {
    "name",
    "paths",
    "exclude",
    "format",
    "read_from",
    "multiline",
    "max_line_bytes",
    "max_record_bytes",
    "partial_line_timeout",
}


class _Section:
    """A mapping with normalised keys that turns value errors into ConfigErrors at the right line."""

    def __init__(self, raw: Any, where: str, source: str | None) -> None:
        if not isinstance(raw, dict):
            line = getattr(raw, "line", None)
            raise ConfigError(
                "expected a mapping", key=where, file=getattr(raw, "file", None) or source, line=line
            )
        self.raw = raw
        self.where = where
        self.source = source
        self.values = {_norm(k): v for k, v in raw.items()}
        self.raw_keys = {_norm(k): k for k in raw}

    def error(self, key: str | None, message: str) -> ConfigError:
        full = f"{self.where}.{key}" if key else self.where
        line = None
        if isinstance(self.raw, LineDict):
            line = self.raw.line_of(self.raw_keys.get(key)) if key else self.raw.line
        file = getattr(self.raw, "file", None) or self.source
        return ConfigError(message, key=full, file=file, line=line)

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.values:
            if key not in allowed:
                raise self.error(key, f"unknown key (expected one of {', '.join(sorted(allowed))})")

    def get(self, key: str, parse: Callable[[Any], Any], default: Any) -> Any:
        if key not in self.values:
            return default
        try:
            return parse(self.values[key])
        except (ValueError, TypeError) as exc:
            raise self.error(key, str(exc)) from None

    def items_of(self, key: str) -> list[tuple[Any, str]]:
        """A list value as (item, where) pairs; where is ``section.key[i]``."""
        value = self.values[key]
        if not isinstance(value, list):
            raise self.error(key, "expected a list")
        return [(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(value)]

    def line_of_item(self, key: str, index: int) -> int | None:
        value = self.values[key]
        if isinstance(value, LineList) and index < len(value.item_lines):
            return value.item_lines[index]
        return None


def _string_list(section: _Section, key: str, *, required: bool) -> tuple[str, ...]:
    if key not in section.values:
        if required:
            raise section.error(None, f"{key!r} is required")
        return ()
    value = section.values[key]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise section.error(key, "expected a list of non-empty strings")
    if required and not value:
        raise section.error(key, "must not be empty")
    return tuple(value)


def _parse_multiline(section: _Section) -> MultilineConfig | None:
    raw = section.values.get("multiline")
    if raw is None:
        return None
    sub = _Section(raw, f"{section.where}.multiline", section.source)
    sub.check_keys({"start_pattern", "timeout"})
    if "start_pattern" not in sub.values:
        raise sub.error(None, "'start_pattern' is required")
    pattern = sub.get("start_pattern", parse_regex, None)
    timeout = sub.get("timeout", _positive(parse_duration), 3.0)
    return MultilineConfig(start_pattern=pattern, timeout=timeout)


def _parse_input(raw: Any, where: str, index: int, source: str | None) -> InputConfig:
    section = _Section(raw, where, source)
    section.check_keys(_INPUT_KEYS)
    paths = _string_list(section, "paths", required=True)
    for pattern in paths:
        if not os.path.isabs(pattern):
            raise section.error("paths", f"paths must be absolute, got {pattern!r}")
    return InputConfig(
        name=section.get("name", _nonempty_str, f"input{index}"),
        paths=paths,
        exclude=_string_list(section, "exclude", required=False),
        format=section.get("format", parse_choice(*FORMATS), "auto"),
        read_from=section.get("read_from", parse_choice(*READ_FROM), "head"),
        multiline=_parse_multiline(section),
        max_line_bytes=section.get("max_line_bytes", _at_least(64, parse_size), 256 * 1024),
        max_record_bytes=section.get("max_record_bytes", _at_least(64, parse_size), 1024 * 1024),
        partial_line_timeout=section.get("partial_line_timeout", _positive(parse_duration), 5.0),
    )


def _nonempty_str(raw: Any) -> str:
    text = parse_str(raw).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _at_least(minimum: int, parse: Callable[[Any], int]) -> Callable[[Any], int]:
    def parse_bounded(raw: Any) -> int:
        value = parse(raw)
        if value < minimum:
            raise ValueError(f"must be at least {minimum}, got {raw!r}")
        return value

    return parse_bounded


def _sink_types() -> tuple[Callable[..., Any] | None, Any]:
    """make_sink and SINK_TYPES from the sinks package, or (None, None) while it has neither."""
    try:
        from nodeagent.logs import sinks
    except ImportError:
        return None, None
    return getattr(sinks, "make_sink", None), getattr(sinks, "SINK_TYPES", None)


def _parse_sink(raw: Any, where: str, index: int, source: str | None, used: set[str]) -> SinkSpec:
    section = _Section(raw, where, source)
    if "type" not in section.values:
        raise section.error(None, "'type' is required")
    sink_type = section.get("type", _nonempty_str, None)
    make_sink, sink_types = _sink_types()
    if sink_types is not None and sink_type not in sink_types:
        raise section.error(
            "type", f"unknown sink type {sink_type!r} (expected one of {', '.join(sorted(sink_types))})"
        )
    name = section.get("name", _nonempty_str, None)
    if name is None:
        name = sink_type if sink_type not in used else f"{sink_type}{index}"
    if name in used:
        raise section.error("name", f"duplicate sink name {name!r}")
    used.add(name)
    options = {section.raw_keys[k]: v for k, v in section.values.items() if k not in ("type", "name")}
    spec = SinkSpec(name=name, type=sink_type, options=options)
    if make_sink is not None:
        try:
            make_sink(spec.as_spec(), name=name)  # validates the options; opens nothing until start()
        except (ValueError, TypeError, KeyError) as exc:
            # make_sink says "option: problem"; point at the option when it can.
            option, sep, problem = str(exc).partition(": ")
            if sep and option and " " not in option:
                raise section.error(option, f"sink {name!r}: {problem}") from None
            raise section.error(None, f"sink {name!r}: {exc}") from None
        except ConfigError as exc:
            raise section.error(exc.key, exc.message) from None
    return spec


def own_output_excludes(sinks: tuple[SinkSpec, ...], environ: Mapping[str, str]) -> tuple[str, ...]:
    """Patterns that keep the shipper from reading what it writes (file sinks, its own pod's logs)."""
    patterns: list[str] = []
    for sink in sinks:
        path = sink.options.get("path")
        if sink.type == "file" and isinstance(path, str) and path:
            for candidate in {os.path.abspath(path), os.path.realpath(path)}:
                patterns += [_glob_escape(candidate), _glob_escape(candidate) + ".*"]
    pod, namespace = environ.get("NODEAGENT_POD_NAME"), environ.get("NODEAGENT_POD_NAMESPACE")
    if pod and namespace:
        pod_e, ns_e = _glob_escape(pod), _glob_escape(namespace)
        uid = _glob_escape(environ.get("NODEAGENT_POD_UID") or "*")
        # kubelet: /var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log and the
        # /var/log/containers/<pod>_<ns>_<container>-<id>.log symlinks to them.
        patterns += [f"**/{ns_e}_{pod_e}_{uid}/*/*", f"**/containers/{pod_e}_{ns_e}_*"]
    return tuple(patterns)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def _load_default() -> LineDict:
    data = load_yaml(DEFAULT_YAML.read_text(encoding="utf-8"), str(DEFAULT_YAML))
    assert isinstance(data, LineDict), "default.yaml must be a mapping"
    return data


def parse_logs_config(
    section: Any, *, source: str | None = None, environ: Mapping[str, str] | None = None
) -> LogsConfig:
    """Validate the ``logs:`` mapping (None: the embedded default); raises ConfigError naming key and line."""
    environ = os.environ if environ is None else environ
    default = _Section(_load_default(), "logs", str(DEFAULT_YAML))
    top = default if section is None else _Section(section, "logs", source)
    top.check_keys(_TOP_KEYS)

    def pick(key: str) -> _Section:
        return top if key in top.values else default

    enabled = top.get("enabled", parse_bool, True)
    state_dir_text = top.get("state_dir", _nonempty_str, None)
    if state_dir_text is not None and not os.path.isabs(state_dir_text):
        raise top.error("state_dir", f"must be an absolute path, got {state_dir_text!r}")
    state_dir = Path(state_dir_text) if state_dir_text else default_state_dir(environ)

    sink_section = pick("sinks")
    used: set[str] = set()
    sinks = tuple(
        _parse_sink(raw, where, i, sink_section.source, used)
        for i, (raw, where) in enumerate(sink_section.items_of("sinks"))
    )
    if not sinks:
        raise sink_section.error("sinks", "at least one sink is required")

    input_section = pick("inputs")
    inputs = [
        _parse_input(raw, where, i, input_section.source)
        for i, (raw, where) in enumerate(input_section.items_of("inputs"))
    ]
    if not inputs:
        raise input_section.error("inputs", "at least one input is required")
    names: set[str] = set()
    for i, item in enumerate(inputs):
        if item.name in names:
            line = input_section.line_of_item("inputs", i)
            raise ConfigError(
                f"duplicate input name {item.name!r}",
                key=f"logs.inputs[{i}].name",
                file=input_section.source,
                line=line,
            )
        names.add(item.name)
    own = own_output_excludes(sinks, environ)
    if own:
        inputs = [_with_excludes(item, own) for item in inputs]

    tuning = {
        key: top.get(key, parse, LogsConfig.__dataclass_fields__[key].default)
        for key, parse in _TUNING.items()
    }
    if tuning["retry_max_backoff"] < tuning["retry_initial_backoff"]:
        raise top.error("retry_max_backoff", "must not be smaller than retry_initial_backoff")
    return LogsConfig(
        enabled=enabled, state_dir=state_dir, inputs=tuple(inputs), sinks=sinks, source=source, **tuning
    )


def _with_excludes(item: InputConfig, extra: tuple[str, ...]) -> InputConfig:
    return replace(item, exclude=item.exclude + tuple(p for p in extra if p not in item.exclude))
