"""The ``logs:`` section: inputs (which files, how to read them), sinks, and delivery tuning.

:func:`parse_logs_config` reads the YAML mapping (a :class:`~nodeagent.config.loader.LineDict`, so errors
name file and line) with the sections declared here into a frozen :class:`LogsConfig`; each sink's options
are declared by the sink itself (``option_schema`` in :mod:`nodeagent.logs.sinks`). Defaults are written
once: the dataclasses below hold them, the schema refers to them. What the section leaves out of
``inputs`` and ``sinks`` comes from the embedded default (``nodeagent/logs/default.yaml``): with no
section at all the agent tails the usual host and container logs to stdout.

``kubernetes`` (:class:`PodMetadataConfig`) configures the pod metadata watch; its ``enabled: auto`` is
decided here from the environment.

The shipper never ingests its own output: every file sink's path (and its rotated siblings) is excluded
from every input, and so is the agent's own container log when the pod is known from the environment
(``NODEAGENT_POD_NAME`` + ``NODEAGENT_POD_NAMESPACE``, optionally ``NODEAGENT_POD_UID``, set through the
downward API); otherwise a stdout sink inside a pod would read back its own lines from
/var/log/pods or /var/log/containers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nodeagent.logs
from nodeagent.config.errors import ConfigError
from nodeagent.config.loader import LineDict, load_yaml
from nodeagent.config.schema import REQUIRED, Field, Invalid, ListOf, Section, mapping_entries, normalize_key
from nodeagent.config.secrets import redact_url
from nodeagent.config.values import (
    bounded,
    parse_absolute_path,
    parse_absolute_paths,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_nonempty_str,
    parse_regex,
    parse_size,
    parse_string_list,
    positive_duration,
    positive_int,
    positive_size,
    shown,
)
from nodeagent.logs.filters import Filter, parse_filters
from nodeagent.logs.parsers import FORMATS, MultilineConfig
from nodeagent.logs.sinks import SINK_TYPES, parse_sink_type

DEFAULT_YAML = Path(nodeagent.logs.__file__).with_name("default.yaml")
READ_FROM = ("head", "tail")
INPUT_TYPES = ("files", "journald")
MIN_LINE_BYTES = 64
# A journal field name as journald accepts it (uppercase letters, digits, underscores; not starting with a
# digit): what a match on the journalctl command line or an exclude may name.
JOURNAL_FIELD = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


@dataclass(frozen=True)
class InputConfig:
    """One group of files read the same way."""

    name: str  # "" until numbered: input<N>
    paths: tuple[str, ...]
    type: str = "files"
    exclude: tuple[str, ...] = ()
    format: str = "auto"
    read_from: str = "head"  # where to start in a file that exists when the agent starts
    multiline: MultilineConfig | None = None
    max_line_bytes: int = 256 * 1024
    max_record_bytes: int = 1024 * 1024
    partial_line_timeout: float = 5.0
    filters: tuple[Filter, ...] = ()  # applied to each record after parsing (nodeagent.logs.filters)


BUFFER_TYPES = ("memory", "disk")
WHEN_FULL = ("block", "drop_newest")
MIN_DISK_BUFFER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class BufferConfig:
    """A sink's ``buffer``: memory (the pipeline's, shared) or disk (its own queue under state_dir)."""

    type: str = "memory"
    max_size: int = 1024**3
    when_full: str = "block"


@dataclass(frozen=True)
class JournaldInputConfig:
    """The systemd journal, read through journalctl (:mod:`nodeagent.logs.journald`)."""

    name: str  # "" until numbered: input<N>
    type: str = "journald"
    units: tuple[str, ...] = ()  # _SYSTEMD_UNIT matches, ORed; ".service" added to names without a dot
    include: tuple[tuple[str, tuple[str, ...]], ...] = ()  # field -> values: values ORed, fields ANDed
    exclude: tuple[tuple[str, tuple[str, ...]], ...] = ()  # an entry with any of these values is skipped
    directory: str | None = None  # None: journald's own directories below --path.rootfs
    journalctl: str = "journalctl"
    read_from: str = "tail"  # where the first start (no saved cursor) begins
    max_message_bytes: int = 256 * 1024
    max_field_bytes: int = 4096
    restart_backoff: float = 1.0
    restart_max_backoff: float = 60.0
    filters: tuple[Filter, ...] = ()  # applied to each record (nodeagent.logs.filters)
    rootfs: str = "/"  # --path.rootfs, set by parse_logs_config


@dataclass(frozen=True)
class SinkSpec:
    """A sink as configured: ``type``, a unique ``name``, its ``filters``, its ``buffer`` and the
    remaining options."""

    name: str
    type: str
    options: Mapping[str, Any]
    filters: tuple[Filter, ...] = ()  # applied right before this sink's send
    buffer: BufferConfig = BufferConfig()

    def describe(self) -> str:
        """``name=type:destination`` for the log, credentials redacted."""
        destination = next((self.options[k] for k in ("url", "address", "path") if k in self.options), "")
        return (
            f"{self.name}={self.type}:{redact_url(str(destination))}"
            if destination
            else f"{self.name}={self.type}"
        )

    def as_spec(self) -> dict[str, Any]:
        """The mapping handed to :func:`nodeagent.logs.sinks.make_sink`."""
        return {"type": self.type, **self.options}


# The service-account token kubelet mounts when the pod may talk to the API (the pod-metadata component).
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
# Only a `kubectl apply` copy of the whole object: large, and no one filters logs by it.
DEFAULT_ANNOTATION_DENY = ("kubectl.kubernetes.io/last-applied-configuration",)


@dataclass(frozen=True)
class PodMetadataConfig:
    """``logs.kubernetes``: pod metadata from a watch of this node's pods (:mod:`nodeagent.logs.podmeta`).

    ``enabled`` None means auto: on in a pod that has a service-account token mounted (or when a kubeconfig
    is given), off elsewhere; :func:`parse_logs_config` resolves it to a bool."""

    enabled: bool | None = None
    kubeconfig: str | None = None
    node_name: str | None = None  # default: $NODEAGENT_NODE_NAME, else the agent's node name
    labels: bool = True
    annotations: bool = True
    label_allow: tuple[str, ...] = ()  # glob, or `re:<regex>`; empty: every key
    label_deny: tuple[str, ...] = ()
    annotation_allow: tuple[str, ...] = ()
    annotation_deny: tuple[str, ...] = DEFAULT_ANNOTATION_DENY
    node_labels: bool = False  # needs `get` on nodes
    resolve_replicasets: bool = False  # a get per ReplicaSet for its owner (needs `get` on replicasets)
    wait_for_metadata: float = 2.0  # the longest a record of a pod not cached yet is held back
    request_timeout: float = 10.0
    deleted_pod_grace: float = 300.0
    max_cached_pods: int = 4096


@dataclass(frozen=True)
class LogsConfig:
    enabled: bool
    state_dir: Path
    inputs: tuple[InputConfig, ...]
    sinks: tuple[SinkSpec, ...]
    # 2 MiB of raw lines is the bound that matters (10-20k usual lines): fewer commits (fsyncs) per GB
    # with a backlog; a batch only waits for batch_timeout when there is no backlog.
    batch_max_records: int = 20000
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
    kubernetes: PodMetadataConfig = PodMetadataConfig(enabled=False)
    journals: tuple[JournaldInputConfig, ...] = ()  # the inputs of type journald (``inputs`` has the files)
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


def _filters(raw: Any) -> tuple[Filter, ...]:
    return tuple(parse_filters(raw))


MULTILINE = Section(
    (
        Field("start_pattern", REQUIRED, "Regexp a record's first line matches.", parse_regex),
        Field("timeout", 3.0, "Flush a record after this long without a new line.", positive_duration),
    ),
    target=MultilineConfig,
)

INPUT = Section(
    (
        Field("name", "", "Name of the input (default: input<N>).", parse_nonempty_str),
        Field("type", help=f"One of {', '.join(INPUT_TYPES)}.", parse=parse_choice(*INPUT_TYPES)),
        Field("paths", REQUIRED, "Absolute glob patterns of the files to read.", parse_absolute_paths),
        Field("exclude", help="Glob patterns of files to leave out.", parse=parse_string_list),
        Field("format", help=f"One of {', '.join(FORMATS)}.", parse=parse_choice(*FORMATS)),
        Field(
            "read_from",
            help="Where to start in a file that exists at start-up.",
            parse=parse_choice(*READ_FROM),
        ),
        Field("multiline", None, "Join lines into records.", MULTILINE),
        Field("max_line_bytes", help="Longer lines are cut.", parse=bounded(parse_size, MIN_LINE_BYTES)),
        Field("max_record_bytes", help="Longer records are cut.", parse=bounded(parse_size, MIN_LINE_BYTES)),
        Field(
            "partial_line_timeout",
            help="Ship a line without its end after this long.",
            parse=positive_duration,
        ),
        Field("filters", help="Filters applied to every record after parsing.", parse=_filters),
    ),
    target=InputConfig,
)


def _check_buffer(values: dict[str, Any]) -> None:
    if values["type"] != "disk":
        for key in ("max_size", "when_full"):
            if values[key] is not None:
                raise Invalid(key, "only for a disk buffer (type: disk)")


BUFFER = Section(
    (
        Field("type", "memory", f"One of {', '.join(BUFFER_TYPES)}.", parse_choice(*BUFFER_TYPES)),
        Field(
            "max_size",
            None,
            "Bytes the disk buffer may use (default 1GiB).",
            bounded(parse_size, MIN_DISK_BUFFER_BYTES),
        ),
        Field("when_full", None, f"One of {', '.join(WHEN_FULL)} (default block).", parse_choice(*WHEN_FULL)),
    ),
    check=_check_buffer,
)


def parse_buffer(raw: Any) -> BufferConfig:
    values = {key: value for key, value in BUFFER.read(raw).items() if value is not None}
    return BufferConfig(**values)


def parse_auto_bool(raw: Any) -> bool | None:
    """true / false, or ``auto`` (None: decided from the environment)."""
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return None
    return parse_bool(raw)


def parse_key_patterns(raw: Any) -> tuple[str, ...]:
    """Glob patterns of label/annotation keys; ``re:<regex>`` for a regular expression (full match)."""
    patterns = parse_string_list(raw)
    for pattern in patterns:
        if pattern.startswith("re:"):
            parse_regex(pattern[3:])
    return patterns


POD_METADATA = Section(
    (
        Field(
            "enabled",
            None,
            "true, false or auto (on in a pod with a service-account token).",
            parse_auto_bool,
        ),
        Field(
            "kubeconfig", None, "Kubeconfig file (default: in-cluster configuration).", parse_absolute_path
        ),
        Field(
            "node_name",
            None,
            "Whose pods to watch (default: $NODEAGENT_NODE_NAME, the node name).",
            parse_nonempty_str,
        ),
        Field("labels", help="Add pod labels.", parse=parse_bool),
        Field("annotations", help="Add pod annotations.", parse=parse_bool),
        Field(
            "label_allow", help="Label keys to keep (glob or re:regex; empty: all).", parse=parse_key_patterns
        ),
        Field("label_deny", help="Label keys to drop.", parse=parse_key_patterns),
        Field("annotation_allow", help="Annotation keys to keep.", parse=parse_key_patterns),
        Field("annotation_deny", help="Annotation keys to drop.", parse=parse_key_patterns),
        Field("node_labels", help="Add the node's labels (needs get on nodes).", parse=parse_bool),
        Field(
            "resolve_replicasets",
            help="Ask the API for a ReplicaSet's owner (needs get on replicasets).",
            parse=parse_bool,
        ),
        Field(
            "wait_for_metadata",
            help="Hold records of an unknown pod at most this long.",
            parse=parse_duration,
        ),
        Field("request_timeout", help="Timeout of one API request.", parse=positive_duration),
        Field("deleted_pod_grace", help="Keep a deleted pod's metadata this long.", parse=parse_duration),
        Field("max_cached_pods", help="Most pods kept (deleted ones go first).", parse=positive_int),
    ),
    target=PodMetadataConfig,
)


def parse_journal_field(raw: Any) -> str:
    name = parse_nonempty_str(raw)
    if not JOURNAL_FIELD.fullmatch(name):
        raise ValueError(f"not a journal field name (A-Z, 0-9, _; at most 64): {shown(name)}")
    return name


def parse_field_matches(raw: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{FIELD: value or [values]}`` -> ((FIELD, (values...)), ...)."""
    if not isinstance(raw, Mapping):
        raise ValueError("expected a mapping of journal field names to values")
    matches = []
    for key, value in raw.items():
        name = parse_journal_field(key)
        items = value if isinstance(value, list) else [value]
        if not items or not all(_is_match_value(item) for item in items):
            raise ValueError(f"{name}: expected a value or a list of values (strings or numbers)")
        texts = tuple(str(item) for item in items)
        if any("\n" in text or not text for text in texts):
            raise ValueError(f"{name}: a value must be non-empty and on one line")
        matches.append((name, texts))
    return tuple(matches)


def _is_match_value(item: Any) -> bool:
    return isinstance(item, (str, int)) and not isinstance(item, bool)


def parse_units(raw: Any) -> tuple[str, ...]:
    units = parse_string_list(raw)
    for unit in units:
        if "\n" in unit or "=" in unit:
            raise ValueError(f"not a unit name: {shown(unit)}")
    return tuple(unit if "." in unit else unit + ".service" for unit in units)


def _check_journald(values: dict[str, Any]) -> None:
    if values["restart_max_backoff"] < values["restart_backoff"]:
        raise Invalid("restart_max_backoff", "must not be smaller than restart_backoff")


JOURNALD_INPUT = Section(
    (
        Field("name", "", "Name of the input (default: input<N>).", parse_nonempty_str),
        Field("type", REQUIRED, "journald.", parse_choice("journald")),
        Field("units", help="Systemd units to read (default: all).", parse=parse_units),
        Field("include", help="Journal field -> values to read (default: all).", parse=parse_field_matches),
        Field("exclude", help="Journal field -> values of entries to skip.", parse=parse_field_matches),
        Field(
            "directory",
            help="A journal directory (default: /var/log/journal and /run/log/journal below --path.rootfs).",
            parse=parse_absolute_path,
        ),
        Field("journalctl", help="The journalctl binary.", parse=parse_nonempty_str),
        Field("read_from", help="Where the first start begins.", parse=parse_choice(*READ_FROM)),
        Field(
            "max_message_bytes", help="Longer messages are cut.", parse=bounded(parse_size, MIN_LINE_BYTES)
        ),
        Field(
            "max_field_bytes", help="Longer other fields are cut.", parse=bounded(parse_size, MIN_LINE_BYTES)
        ),
        Field("restart_backoff", help="First wait before journalctl is run again.", parse=positive_duration),
        Field("restart_max_backoff", help="Longest wait before a restart.", parse=positive_duration),
        Field("filters", help="Filters applied to every record.", parse=_filters),
    ),
    subject="a journald input",
    target=JournaldInputConfig,
    check=_check_journald,
)


def parse_input(raw: Any) -> InputConfig | JournaldInputConfig:
    """An entry of ``inputs``: files (the default) or journald, each refusing the other's keys."""
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    section, other, other_kind = (
        (JOURNALD_INPUT, INPUT, "files") if kind == "journald" else (INPUT, JOURNALD_INPUT, "journald")
    )
    if isinstance(raw, Mapping):
        own = {normalize_key(f.name) for f in section.fields}
        foreign = {normalize_key(f.name) for f in other.fields} - own
        for key, norm, _ in mapping_entries(raw):
            if norm in foreign:
                line = raw.line_of(key) if isinstance(raw, LineDict) else None
                file = raw.file if isinstance(raw, LineDict) else None
                raise ConfigError(f"only for inputs of type {other_kind}", key=key, file=file, line=line)
    return section(raw)


def _check_sink_options(values: dict[str, Any]) -> None:
    """Read a sink's options with the sink's own schema: its errors are about keys next to ``type``."""
    SINK_TYPES[values["type"]].option_schema.read(values["options"])


SINK = Section(
    (
        Field("type", REQUIRED, f"One of {', '.join(sorted(SINK_TYPES))}.", parse_sink_type),
        Field("name", None, "Unique name (default: the type).", parse_nonempty_str),
        Field("filters", (), "Filters applied right before this sink's send.", _filters),
        Field("buffer", BufferConfig(), "Where batches wait for the sink: memory or disk.", parse_buffer),
    ),
    rest="options",  # checked by the sink's own option_schema
    check=_check_sink_options,
)


def _check_backoff(values: dict[str, Any]) -> None:
    if values["retry_max_backoff"] < values["retry_initial_backoff"]:
        raise Invalid("retry_max_backoff", "must not be smaller than retry_initial_backoff")


LOGS = Section(
    (
        Field("enabled", True, "Run the log shipper.", parse_bool),
        Field("state_dir", None, "Where checkpoints live (default: per user).", parse_absolute_path),
        Field(
            "inputs",
            help="Groups of files.",
            parse=ListOf(parse_input, empty="at least one input is required"),
        ),
        Field("sinks", help="Destinations.", parse=ListOf(SINK, empty="at least one sink is required")),
        Field("batch_max_records", parse=positive_int),
        Field("batch_max_bytes", parse=positive_size),
        Field("batch_timeout", parse=parse_duration),
        Field("buffer_max_bytes", parse=positive_size),
        Field("checkpoint_interval", parse=parse_duration),
        Field("rescan_interval", parse=positive_duration),
        Field("poll_interval", parse=positive_duration),
        Field("max_open_files", parse=positive_int),
        Field("close_inactive", parse=positive_duration),
        Field("rotate_wait", parse=parse_duration),
        Field("deleted_file_timeout", parse=parse_duration),
        Field("retry_initial_backoff", parse=positive_duration),
        Field("retry_max_backoff", parse=positive_duration),
        Field("drain_timeout", parse=parse_duration),
        Field("kubernetes", None, "Pod metadata from the Kubernetes API.", POD_METADATA),
    ),
    target=LogsConfig,
    check=_check_backoff,
)


def _read(section: Any, source: str | None) -> dict[str, Any]:
    try:
        return LOGS.read(section)
    except ConfigError as exc:
        raise exc.within("logs", file=source, line=getattr(section, "line", None)) from None


def _load_default() -> dict[str, Any]:
    data = load_yaml(DEFAULT_YAML.read_text(encoding="utf-8"), str(DEFAULT_YAML))
    assert isinstance(data, LineDict), "default.yaml must be a mapping"
    return _read(data, str(DEFAULT_YAML))


def parse_logs_config(
    section: Any,
    *,
    source: str | None = None,
    environ: Mapping[str, str] | None = None,
    rootfs: str = "/",
) -> LogsConfig:
    """Validate the ``logs:`` mapping (None: the embedded default); raises ConfigError naming key and line.

    ``rootfs`` (--path.rootfs) is where journald inputs find the host's journal directories."""
    environ = os.environ if environ is None else environ
    default = _load_default()
    given = default if section is None else _read(section, source)
    values = {
        **given,
        "inputs": given.get("inputs", default["inputs"]),
        "sinks": given.get("sinks", default["sinks"]),
    }
    values["state_dir"] = Path(values["state_dir"]) if values["state_dir"] else default_state_dir(environ)
    values["kubernetes"] = _pod_metadata(values["kubernetes"], environ)

    sinks = tuple(_sink_specs(values["sinks"], _items_of(section, "sinks"), source))
    named = _inputs(values["inputs"], _items_of(section, "inputs"), source)
    inputs = [item for item in named if isinstance(item, InputConfig)]
    journals = tuple(replace(item, rootfs=rootfs) for item in named if isinstance(item, JournaldInputConfig))
    own = own_output_excludes(sinks, environ)
    if own:
        inputs = [
            replace(item, exclude=item.exclude + tuple(p for p in own if p not in item.exclude))
            for item in inputs
        ]
    return LogsConfig(
        **{**values, "inputs": tuple(inputs), "journals": journals, "sinks": sinks, "source": source}
    )


def _pod_metadata(given: PodMetadataConfig | None, environ: Mapping[str, str]) -> PodMetadataConfig:
    """The section with ``enabled: auto`` decided: on with a kubeconfig, or in a pod whose service-account
    token is mounted (the base install mounts none, the pod-metadata component does); off elsewhere."""
    config = given or PodMetadataConfig()
    if config.enabled is not None:
        return config
    in_cluster = bool(environ.get("KUBERNETES_SERVICE_HOST")) and os.path.isfile(SERVICE_ACCOUNT_TOKEN)
    return replace(config, enabled=bool(config.kubeconfig) or in_cluster)


def _items_of(section: Any, key: str) -> Any:
    """The user's list under ``key`` (for the lines of its items), or None when the default's is used."""
    return section.get(key) if isinstance(section, Mapping) else None


def _sink_specs(entries: list[dict[str, Any]], items: Any, source: str | None) -> list[SinkSpec]:
    names: list[str] = []
    for index, entry in enumerate(entries):
        sink_type = entry["type"]
        names.append(entry["name"] or (sink_type if sink_type not in names else f"{sink_type}{index}"))
    _refuse_duplicates(names, "sink", items, source)
    return [
        SinkSpec(
            name=name,
            type=entry["type"],
            options=entry["options"],
            filters=entry["filters"],
            buffer=entry["buffer"],
        )
        for name, entry in zip(names, entries, strict=True)
    ]


_Input = Any  # InputConfig | JournaldInputConfig (both have a name)


def _inputs(entries: list[_Input], items: Any, source: str | None) -> list[_Input]:
    inputs = [entry if entry.name else replace(entry, name=f"input{i}") for i, entry in enumerate(entries)]
    _refuse_duplicates([item.name for item in inputs], "input", items, source)
    return inputs


def _refuse_duplicates(names: list[str], what: str, items: Any, source: str | None) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            line = items.line_of(index) if hasattr(items, "line_of") else None
            key = ("logs", f"{what}s", index, "name")
            raise ConfigError(f"duplicate {what} name {name!r}", key=key, file=source, line=line)
        seen.add(name)


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
