"""The collector registry: every collector registers here with its name, default state and options.

The ``--collector.NAME`` / ``--no-collector.NAME`` flags and every ``--collector.NAME.OPTION`` flag are
generated from this registry (see :func:`collector_settings`), so adding a collector is adding one module
under ``nodeagent/metrics/`` and nothing else.

A collector reads files below the configured roots (never a hard-coded ``/proc``) through pure parsing
functions and yields prometheus_client metric families. ``collect()`` is synchronous: the scraper
(:mod:`nodeagent.metrics.scrape`) runs it in a worker thread, off the event loop.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Iterable
from dataclasses import replace
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
_NOT_COLLECTORS = {"registry", "exposition"}


def all_collectors() -> dict[str, type[Collector]]:
    """Import every collector module of this package once; return name -> class, sorted by name."""
    package = importlib.import_module("nodeagent.metrics")
    for module in pkgutil.iter_modules(package.__path__):
        if not module.ispkg and module.name not in _NOT_COLLECTORS and not module.name.startswith("_"):
            importlib.import_module(f"nodeagent.metrics.{module.name}")
    return dict(sorted(_REGISTRY.items()))


def collector_settings() -> dict[str, Setting]:
    """Settings (flags and config keys) generated from the registry."""
    table: dict[str, Setting] = {}
    for name, cls in all_collectors().items():
        state = "enabled" if cls.default_enabled else "disabled"
        table[f"collector.{name}"] = Setting(
            f"collector.{name}",
            None,
            f"Enable the {name} collector (default: {state}).",
            parse=parse_bool,
            is_switch=True,
        )
        for option in cls.options:
            key = f"collector.{name}.{option.name}"
            table[key] = replace(option, name=key)
    return table


def enabled_collectors(values: dict[str, Any], disable_defaults: bool = False) -> list[str]:
    """Names of the collectors switched on by ``values`` (resolved settings)."""
    names = []
    for name, cls in all_collectors().items():
        explicit = values.get(f"collector.{name}")
        on = explicit if explicit is not None else (cls.default_enabled and not disable_defaults)
        if on:
            names.append(name)
    return names


def build_collectors(names: Iterable[str], paths: Paths, values: dict[str, Any]) -> list[Collector]:
    """Instantiate the named collectors with their option values taken from ``values``."""
    registry = all_collectors()
    built = []
    for name in names:
        cls = registry[name]
        opts = {o.name: values.get(f"collector.{name}.{o.name}", o.default) for o in cls.options}
        built.append(cls(paths, opts))
    return built
