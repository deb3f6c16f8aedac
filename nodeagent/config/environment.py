"""``${VAR}`` and ``${VAR:-default}`` in the config file's string values, from the agent's environment.

Expanded after YAML parsing, in string values only (never keys), so a variable cannot inject YAML: a
token that holds ``: `` or a newline stays one string. ``$$`` is a literal ``$``; a ``$`` not followed by
``{`` or ``$`` is kept (regular expressions use it). An unset variable without a default, or a malformed
reference, is a ConfigError naming the key and the variable. Each value is expanded once, also when
aliases make it appear several times.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from nodeagent.config.errors import ConfigError, KeyPart
from nodeagent.config.loader import LineDict, LineList
from nodeagent.config.values import shown

_REFERENCE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<bad>\{))")


def expand_string(text: str, environ: Mapping[str, str]) -> str:
    """One string expanded; raises ValueError for an unset variable or a malformed reference."""
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match["bad"] is not None:
            raise ValueError(f"malformed ${{...}} reference in {shown(text)} (write $$ for a literal $)")
        name = match["name"]
        if name is None:
            return "$"
        value = environ.get(name)
        if value is None:
            if match["default"] is None:
                raise ValueError(f"environment variable {name} is not set (or write ${{{name}:-default}})")
            return match["default"]
        return value

    return _REFERENCE.sub(replace, text)


def expand_environment(document: Any, environ: Mapping[str, str]) -> Any:
    """The document with every string value expanded (mappings and lists changed in place)."""
    seen: set[int] = set()

    def walk(node: Any, path: tuple[KeyPart, ...]) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str):
                    line = node.line_of(key) if isinstance(node, LineDict) else None
                    node[key] = _expand(value, (*path, str(key)), getattr(node, "file", None), line, environ)
                else:
                    walk(value, (*path, str(key)))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, str):
                    line = node.line_of(index) if isinstance(node, LineList) else None
                    node[index] = _expand(value, (*path, index), getattr(node, "file", None), line, environ)
                else:
                    walk(value, (*path, index))

    if isinstance(document, str):
        return _expand(document, (), None, None, environ)
    walk(document, ())
    return document


def _expand(
    text: str, path: tuple[KeyPart, ...], file: str | None, line: int | None, environ: Mapping[str, str]
) -> str:
    try:
        return expand_string(text, environ)
    except ValueError as exc:
        raise ConfigError(str(exc), key=path, file=file, line=line) from None
