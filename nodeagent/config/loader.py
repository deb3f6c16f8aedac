"""The line-aware YAML loader: mappings and sequences remember the file and line they came from.

Any text gives a document or a ConfigError, never another exception: the file is read up to
:data:`MAX_FILE_BYTES`; before anything is built, one pass over the parser's events (an iterative state
machine, not recursive) refuses nesting deeper than :data:`MAX_DEPTH` and documents whose aliases would
expand to more than :data:`MAX_NODES` nodes (an alias bomb is small as text and huge as a tree); keys must
be scalars; and a value YAML cannot build (a 5,000-digit integer) is an error at its line.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodeagent.config.errors import ConfigError
from nodeagent.safeio import read_bounded

if (
    TYPE_CHECKING
):  # imported when a document is loaded: PyYAML costs ~1 MB of RSS a metrics-only run never needs
    import yaml

MAX_FILE_BYTES = 1 << 20  # a config file is a few KiB; the embedded default is under 1 KiB
MAX_DEPTH = 64  # nested mappings and lists
MAX_NODES = 100_000  # nodes of the document once every alias is expanded


class LineDict(dict):
    """A mapping loaded from YAML that remembers the line (1-based) of each key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_lines: dict[Any, int] = {}
        self.line: int | None = None
        self.file: str | None = None

    def line_of(self, key: Any) -> int | None:
        return self.key_lines.get(key, self.line)

    def subset(self, keys: Iterable[Any]) -> LineDict:
        """The given keys only, with their lines."""
        part = LineDict((key, self[key]) for key in keys)
        part.key_lines = {key: line for key, line in self.key_lines.items() if key in part}
        part.line, part.file = self.line, self.file
        return part


class LineList(list):
    """A sequence loaded from YAML that remembers its line and each item's line."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line: int | None = None
        self.item_lines: list[int] = []
        self.file: str | None = None

    def line_of(self, index: int) -> int | None:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> LineDict:
    import yaml

    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.file = loader.source_name
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(
                "keys must be plain values, not lists or mappings",
                file=loader.source_name,
                line=key_node.start_mark.line + 1,
            )
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise ConfigError(
                "duplicate key", key=str(key), file=loader.source_name, line=key_node.start_mark.line + 1
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    result.file = loader.source_name
    return result


@functools.cache
def _line_loader() -> Any:
    """The SafeLoader subclass building LineDict / LineList (made on first use, with PyYAML imported)."""
    import yaml

    class LineLoader(yaml.SafeLoader):
        source_name: str

        def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep)
            except (ValueError, TypeError, OverflowError) as exc:  # ConfigError (a ValueError) included
                if isinstance(exc, ConfigError):
                    raise
                message = f"invalid YAML value: {str(exc).split(';')[0][:200]}"
                raise ConfigError(message, file=self.source_name, line=node.start_mark.line + 1) from None

    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
    return LineLoader


def _check_shape(text: str, source_name: str) -> None:
    """Refuse documents too deep or too big once aliases are expanded, before building anything."""
    import yaml

    expanded: dict[str, int] = {}  # anchor -> nodes below it, aliases expanded
    open_nodes: list[list[Any]] = [[None, 0]]  # [anchor, nodes so far] of each open collection
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            open_nodes.append([event.anchor, 1])
            if len(open_nodes) > MAX_DEPTH:
                raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=source_name, line=line)
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, nodes = open_nodes.pop()
        elif isinstance(event, yaml.ScalarEvent):
            anchor, nodes = event.anchor, 1
        elif isinstance(event, yaml.AliasEvent):
            if any(event.anchor == open_anchor for open_anchor, _ in open_nodes):
                raise ConfigError("an alias inside its own anchor (a loop)", file=source_name, line=line)
            anchor, nodes = None, expanded.get(event.anchor or "", 1)
        else:
            continue
        if anchor is not None:
            expanded[anchor] = nodes
        open_nodes[-1][1] += nodes
        if open_nodes[-1][1] > MAX_NODES:
            message = f"more than {MAX_NODES} values once aliases are expanded"
            raise ConfigError(message, file=source_name, line=line)


def load_yaml(text: str, source_name: str = "<config>") -> Any:
    """Parse one YAML document; mappings come back as :class:`LineDict`, sequences as :class:`LineList`."""
    import yaml

    try:
        _check_shape(text, source_name)
        loader = _line_loader()(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. a control character
        line = text.count("\n", 0, exc.position) + 1
        message = f"invalid YAML: character #x{exc.character:04x} is not allowed"
        raise ConfigError(message, file=source_name, line=line) from None
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, source_name) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {str(exc)[:200]}", file=source_name) from None
    loader.source_name = source_name
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, source_name) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {str(exc)[:200]}", file=source_name) from None
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.MarkedYAMLError, source_name: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    return ConfigError(f"invalid YAML: {str(exc.problem or exc)[:200]}", file=source_name, line=line)


def load_yaml_file(path: str | Path) -> Any:
    """The file's document; at most MAX_FILE_BYTES are read (``/dev/zero`` is an error, not a hang)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data, more = read_bounded(fd, MAX_FILE_BYTES)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror or exc}", file=str(path)) from None
    if more:
        raise ConfigError(f"config file larger than {MAX_FILE_BYTES} bytes", file=str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=str(path), line=line) from None
    return load_yaml(text, str(path))
