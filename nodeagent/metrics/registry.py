"""The collector registry: every collector registers here with its name, default state and options.

The ``--collector.NAME`` / ``--no-collector.NAME`` flags and every ``--collector.NAME.OPTION`` flag are
generated from this registry (see :func:`collector_settings`), so adding a collector is adding one module
under ``nodeagent/metrics/`` and regenerating the catalogue.

The catalogue (:mod:`nodeagent.metrics.catalogue`) is generated from the collector classes by
:func:`catalogue_source` (``python -m nodeagent.metrics.registry``; a test checks it is current): each
collector's module, default state and options, so that the flag table and the choice of collectors need
no collector module, and a run imports only the modules of the collectors it enables (importing all ~76
costs ~1.2 MB of RSS more than the default ones). An option parser defined in a collector module is
named in the catalogue by :class:`ParserIn`, which imports that module only when the option is given.

A collector reads files below the configured roots (never a hard-coded ``/proc``) through pure parsing
functions and yields prometheus_client metric families. ``collect()`` is synchronous: the scraper
(:mod:`nodeagent.metrics.scrape`) runs it in a worker thread, off the event loop.
"""

from __future__ import annotations

import ast
import importlib
import logging
import pkgutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

from prometheus_client.metrics_core import Metric

from nodeagent.config import Field, Setting, parse_bool
from nodeagent.metrics import _parse_errors
from nodeagent.metrics.host.files import Paths
from nodeagent.metrics.host.skips import Skip

log = logging.getLogger("nodeagent.metrics")


class NoDataError(Exception):
    """The collector's data source does not exist on this host: success 0, logged at debug only."""


# A per-collector option: becomes ``--collector.<collector>.<name>`` with node_exporter's default.
CollectorOption = Field


class Collector:
    """Base class. Subclasses set ``name``, optionally ``default_enabled`` and ``options``."""

    name: ClassVar[str]
    default_enabled: ClassVar[bool] = True
    options: ClassVar[tuple[CollectorOption, ...]] = ()

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        self.paths = paths
        self.opts = options  # option name -> parsed value

    def collect(self) -> Iterable[Metric]:
        raise NotImplementedError

    def report(self, skipped: Iterable[Skip]) -> None:
        """Count and log what this collector's parsers skipped: the one way collectors report bad input."""
        _parse_errors.record(self.name, skipped)

    def skip(self, what: str, detail: object) -> None:
        """Report one skipped item (see :meth:`report`)."""
        _parse_errors.record(self.name, (Skip(what, detail),))


_REGISTRY: dict[str, type[Collector]] = {}


def register(cls: type[Collector]) -> type[Collector]:
    """Class decorator adding a collector to the registry."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise RuntimeError(f"collector {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


# Modules of this package that are not collectors; helper modules shared by collectors start with "_",
# and packages (the host-filesystem layer, host/) hold no collectors.
_NOT_COLLECTORS = {"registry", "exposition", "catalogue", "scrape"}


def all_collectors() -> dict[str, type[Collector]]:
    """Import every collector module of this package once; return name -> class, sorted by name."""
    package = importlib.import_module("nodeagent.metrics")
    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg and module.name not in _NOT_COLLECTORS and not module.name.startswith("_"):
            importlib.import_module(f"nodeagent.metrics.{module.name}")
    return dict(sorted(_REGISTRY.items()))


@dataclass(frozen=True)
class ParserIn:
    """An option parser defined in a collector module, imported when first called (see the module doc)."""

    module: str
    name: str

    def __call__(self, raw: Any) -> Any:
        parse: Callable[[Any], Any] = getattr(importlib.import_module(self.module), self.name)
        return parse(raw)


@dataclass(frozen=True)
class CatalogueEntry:
    """What the flag table and the choice of collectors need to know of a collector, without its module."""

    module: str
    default_enabled: bool
    options: tuple[CollectorOption, ...] = ()


def catalogue() -> dict[str, CatalogueEntry]:
    """Collector name -> entry, sorted by name: the generated :mod:`nodeagent.metrics.catalogue`, and
    collectors registered from elsewhere (a module outside this package, such as a test's)."""
    from nodeagent.metrics.catalogue import CATALOGUE

    others = {
        name: CatalogueEntry(cls.__module__, cls.default_enabled, cls.options)
        for name, cls in _REGISTRY.items()
        if name not in CATALOGUE
    }
    return dict(sorted({**CATALOGUE, **others}.items())) if others else CATALOGUE


def collector_class(name: str) -> type[Collector]:
    """The class of a catalogued collector; imports its module."""
    if name not in _REGISTRY:
        importlib.import_module(catalogue()[name].module)
    return _REGISTRY[name]


def collector_settings() -> dict[str, Setting]:
    """Settings (flags and config keys) generated from the registry."""
    table: dict[str, Setting] = {}
    for name, entry in catalogue().items():
        state = "enabled" if entry.default_enabled else "disabled"
        table[f"collector.{name}"] = Setting(
            f"collector.{name}",
            None,
            f"Enable the {name} collector (default: {state}).",
            parse=parse_bool,
            is_switch=True,
        )
        for option in entry.options:
            key = f"collector.{name}.{option.name}"
            table[key] = replace(option, name=key)
    return table


def enabled_collectors(values: dict[str, Any], disable_defaults: bool = False) -> list[str]:
    """Names of the collectors switched on by ``values`` (resolved settings)."""
    names = []
    for name, entry in catalogue().items():
        explicit = values.get(f"collector.{name}")
        on = explicit if explicit is not None else (entry.default_enabled and not disable_defaults)
        if on:
            names.append(name)
    return names


def build_collectors(names: Iterable[str], paths: Paths, values: dict[str, Any]) -> list[Collector]:
    """Instantiate the named collectors with their option values taken from ``values``."""
    built = []
    for name in names:
        cls = collector_class(name)
        opts = {o.name: values.get(f"collector.{name}.{o.name}", o.default) for o in cls.options}
        built.append(cls(paths, opts))
    return built


def _source_of_parser(parse: Callable[[Any], Any], imports: set[str]) -> str:
    """Python source naming ``parse`` in the catalogue; ``imports`` gets what it needs from values."""
    qualname = getattr(parse, "__qualname__", "")
    if qualname == "bounded.<locals>.parse_bounded":  # bounded(parse, minimum, exclusive=...)
        cells = dict(
            zip(parse.__code__.co_freevars, [c.cell_contents for c in parse.__closure__ or ()], strict=True)
        )
        imports.add("bounded")
        inner = _source_of_parser(cells["parse"], imports)
        return f"bounded({inner}, {_literal(cells['minimum'])}, exclusive={_literal(cells['exclusive'])})"
    if "<" in qualname or "." in qualname or not qualname:
        raise ValueError(f"option parser {parse!r}: make it a module-level function to catalogue it")
    if parse.__module__ == "nodeagent.config.values":
        imports.add(qualname)
        return qualname
    return f"ParserIn({_literal(parse.__module__)}, {_literal(qualname)})"


def _literal(value: Any) -> str:
    """Python source of a default value, as ruff formats it (strings in double quotes)."""
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:  # then it holds no quote at all
            text = f'"{text[1:-1]}"'
    elif isinstance(value, tuple):
        text = "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    else:
        text = repr(value)
    if ast.literal_eval(text) != value:
        raise ValueError(f"option default {value!r} does not read back from its source")
    return text


def _call(function: str, arguments: list[str], indent: str) -> str:
    """``function(arguments)``, one argument a line (the form ruff keeps, with the trailing comma)."""
    inner = "".join(f"{indent}    {argument},\n" for argument in arguments)
    return f"{function}(\n{inner}{indent})"


def catalogue_source() -> str:
    """The text of :mod:`nodeagent.metrics.catalogue`, generated from the collector modules."""
    imports: set[str] = set()
    entries = []
    for name, cls in all_collectors().items():
        arguments = [_literal(cls.__module__), repr(cls.default_enabled)]
        if cls.options:
            options = []
            for option in cls.options:
                fields = [_literal(option.name), _literal(option.default), _literal(option.help)]
                fields.append(_source_of_parser(option.parse, imports))
                fields += [
                    f"{field}={_literal(getattr(option, field))}"
                    for field in ("is_switch", "metavar")
                    if getattr(option, field) != getattr(CollectorOption, field)
                ]
                options.append(_call("Option", fields, " " * 12))
            arguments.append(_call("", options, " " * 8))
        entries.append(f"    {_literal(name)}: {_call('CatalogueEntry', arguments, ' ' * 4)},\n")
    return (
        '"""Generated by ``python -m nodeagent.metrics.registry``: do not edit.\n\n'
        "Every collector's module, default state and options (see :mod:`nodeagent.metrics.registry`).\n"
        '"""\n\n'
        "# ruff: noqa: E501 (help texts are kept whole)\n\n"
        "from nodeagent.config.schema import Field as Option\n"
        f"from nodeagent.config.values import {_call('', sorted(imports), '')}\n"
        "from nodeagent.metrics.registry import CatalogueEntry, ParserIn\n\n"
        "CATALOGUE: dict[str, CatalogueEntry] = {\n"
        f"{''.join(entries)}"
        "}\n"
    )


if __name__ == "__main__":
    from nodeagent.metrics import registry  # this file runs as __main__; the collectors register there

    target = Path(registry.__file__).with_name("catalogue.py")
    target.write_text(registry.catalogue_source())
    print(f"wrote {target}", file=sys.stderr)
