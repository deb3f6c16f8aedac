"""One declarative type for every configurable value: :class:`Field`, grouped into a :class:`Section`.

A field has a name, a default, a help text and a parser (:mod:`nodeagent.config.values`). A section reads
one mapping of the YAML file (a :class:`~nodeagent.config.loader.LineDict`, so errors know file and line)
or of the command line's world (a plain dict): it matches keys to fields through :func:`normalize_key`,
the one place where ``-`` and ``_`` are made interchangeable, refuses unknown keys naming the known ones,
and raises :class:`~nodeagent.config.errors.ConfigError` with the key path, file and line. A section is
itself a parser, so sections nest (``multiline:`` in an input) and :class:`ListOf` reads lists of them.

A value of ``null`` counts as not given: the default applies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any

from nodeagent.config.errors import ConfigError
from nodeagent.config.loader import LineDict, LineList
from nodeagent.config.values import parse_str


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED: Any = _Marker("REQUIRED")  # the key must be given
UNSET: Any = _Marker("UNSET")  # the section's target type has the default


def normalize_key(key: str) -> str:
    """The form keys are compared in: ``_`` and ``-`` are the same character in every key."""
    return key.replace("_", "-")


@dataclass(frozen=True)
class Field:
    """One configurable value.

    In a :class:`Section`, ``name`` is the key in its mapping; in the settings table (see
    :mod:`nodeagent.config.settings`) it is the dotted key that is both the flag (``--web.listen-address``)
    and the path in the YAML file.
    """

    name: str
    default: Any = UNSET
    help: str = ""
    parse: Callable[[Any], Any] = parse_str
    is_switch: bool = False  # a boolean that gets --KEY / --no-KEY flags
    metavar: str | None = None

    @property
    def key(self) -> str:
        return self.name

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    def read(self, raw: Any, *, file: str | None = None, line: int | None = None) -> Any:
        """The parsed value; any refusal becomes a ConfigError about this key at ``file:line``."""
        try:
            return self.parse(raw)
        except ConfigError as exc:  # a nested section: its key goes below ours
            raise exc.within(self.name, file=file, line=line) from None
        except ValueError as exc:
            raise ConfigError(str(exc), key=self.name, file=file, line=line) from None


class Invalid(ValueError):
    """Raised by a section's ``check``: a problem with the values together, reported at ``key``."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def _file_of(raw: Any) -> str | None:
    return raw.file if isinstance(raw, (LineDict, LineList)) else None


def _line_of(raw: Any) -> int | None:
    return raw.line if isinstance(raw, (LineDict, LineList)) else None


def mapping_entries(raw: Any) -> list[tuple[Any, str, Any]]:
    """(key as written, normalised key, value) of a mapping; keys that are not strings are refused."""
    entries = []
    for key, value in raw.items():
        if not isinstance(key, str):
            line = raw.line_of(key) if isinstance(raw, LineDict) else None
            key_text = str(key)[:100]
            raise ConfigError("keys must be strings", key=key_text, file=_file_of(raw), line=line)
        entries.append((key, normalize_key(key), value))
    return entries


@dataclass(frozen=True)
class Section:
    """A mapping of fields.

    ``subject`` (``"a file sink"``) words the messages about missing and unknown options as a sink's;
    without it they are about keys of this section. ``target``: a dataclass whose field defaults apply
    to fields declared with ``UNSET``, and what calling the section builds. ``rest``: the name under which
    keys that are not fields are kept (a LineDict) instead of being refused. ``check`` sees all values
    and raises :class:`Invalid` for problems between them.
    """

    fields: tuple[Field, ...]
    subject: str | None = None
    target: type | None = None
    rest: str | None = None
    check: Callable[[dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        names = [normalize_key(f.name) for f in self.fields]
        if len(set(names)) != len(names):
            raise RuntimeError(f"fields declared twice: {names}")

    def read(self, raw: Any) -> dict[str, Any]:
        """Values by field name (with defaults); raises ConfigError with keys relative to this section."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"expected a mapping, got {type(raw).__name__}", line=_line_of(raw))
        file = _file_of(raw)
        by_key = {normalize_key(f.name): f for f in self.fields}
        given: dict[str, tuple[Any, Any]] = {}  # normalised key -> (key as written, value)
        rest: list[Any] = []
        for key, norm, value in mapping_entries(raw):
            if norm in given:
                raise self._error(raw, key, "given twice (once with '-' and once with '_')")
            if norm not in by_key:
                if self.rest is None:
                    raise self._error(raw, key, self._unknown_message())
                rest.append(key)
            given[norm] = (key, value)
        values: dict[str, Any] = {}
        defaults = _dataclass_defaults(self.target)
        for norm, field in by_key.items():
            key, value = given.get(norm, (None, None))
            if value is not None:
                values[field.name] = field.read(value, file=file, line=_key_line(raw, key))
            elif field.default is REQUIRED:
                raise self._missing(raw, field.name)
            elif field.default is not UNSET:
                values[field.name] = field.default
            elif field.name in defaults:
                values[field.name] = defaults[field.name]
        if self.rest is not None:
            values[self.rest] = raw.subset(rest) if isinstance(raw, LineDict) else {k: raw[k] for k in rest}
        if self.check is not None:
            try:
                self.check(values)
            except Invalid as exc:
                if exc.key is None:
                    raise ConfigError(exc.message, file=file, line=_line_of(raw)) from None
                written = given.get(normalize_key(exc.key), (exc.key, None))[0]
                raise ConfigError(exc.message, key=exc.key, file=file, line=_key_line(raw, written)) from None
        return values

    def __call__(self, raw: Any) -> Any:
        """As a parser: the target built from the values (the values themselves without a target)."""
        values = self.read(raw)
        return self.target(**values) if self.target is not None else values

    def known(self) -> str:
        return ", ".join(sorted(f.name for f in self.fields)) or "none"

    def _unknown_message(self) -> str:
        if self.subject:
            return f"unknown option for {self.subject} (known: {self.known()})"
        return f"unknown key (expected one of {self.known()})"

    def _error(self, raw: Any, key: Any, message: str) -> ConfigError:
        return ConfigError(message, key=str(key), file=_file_of(raw), line=_key_line(raw, key))

    def _missing(self, raw: Any, name: str) -> ConfigError:
        if self.subject:
            return ConfigError(
                f"required for {self.subject}", key=name, file=_file_of(raw), line=_line_of(raw)
            )
        return ConfigError(f"{name!r} is required", file=_file_of(raw), line=_line_of(raw))


def _key_line(raw: Any, key: Any) -> int | None:
    return raw.line_of(key) if isinstance(raw, LineDict) else None


def _dataclass_defaults(target: type | None) -> dict[str, Any]:
    if target is None:
        return {}
    defaults = {}
    for item in fields(target):
        if item.default is not MISSING:
            defaults[item.name] = item.default
        elif item.default_factory is not MISSING:
            defaults[item.name] = item.default_factory()
    return defaults


@dataclass(frozen=True)
class ListOf:
    """A parser for a list whose items another parser (often a Section) reads; errors name the index."""

    item: Callable[[Any], Any]
    empty: str | None = None  # the message when the list must not be empty

    def __call__(self, raw: Any) -> list[Any]:
        if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
            raise ValueError("expected a list")
        if not raw and self.empty:
            raise ValueError(self.empty)
        items = []
        for index, item in enumerate(raw):
            line = raw.line_of(index) if isinstance(raw, LineList) else None
            try:
                items.append(self.item(item))
            except ConfigError as exc:
                raise exc.within(index, file=_file_of(raw), line=line) from None
            except ValueError as exc:
                raise ConfigError(str(exc), key=(index,), file=_file_of(raw), line=line) from None
        return items
