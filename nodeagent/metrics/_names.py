"""Metric names built from host data (sysctl names, RAPL zones, lnstat columns, meminfo fields)."""

from __future__ import annotations

import re

# node_exporter's SanitizeMetricName: each run of other characters, with the underscores around it, is "_"
_NOT_NAME = re.compile(r"_*[^0-9A-Za-z_]+_*")
_NAME_PART = re.compile(r"[0-9A-Za-z_]+")


def sanitize_metric_name(name: str) -> str:
    """``fs.file-nr`` -> ``fs_file_nr``, as node_exporter."""
    return _NOT_NAME.sub("_", name)


def is_metric_name_part(text: str) -> bool:
    """Whether ``text`` can go into a metric name as it is. node_exporter uses such host-provided
    names unchecked (a bad one would panic it); here such a name is skipped and reported."""
    return _NAME_PART.fullmatch(text) is not None
