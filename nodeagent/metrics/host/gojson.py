"""Decoding JSON into records the way Go's encoding/json fills a struct, for node_exporter's JSON test
fixtures (``--collector.qdisc.fixtures``, ``--collector.wifi.fixtures``): object keys match field names
case-insensitively, unknown keys and nulls are ignored, absent fields keep their zero value, ``[]byte``
fields are base64 text, and a value of the wrong type is an error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def fill(record: Any, target: object, fields: dict[str, str], what: str) -> None:
    """Set ``target``'s attributes from a JSON object; ``fields`` maps lower-case keys to attribute
    names, whose current values give the types. Raises ValueError."""
    if not isinstance(record, dict):
        raise ValueError(f"{what}: not a JSON object")
    for key, value in record.items():
        attribute = fields.get(key.lower())
        if attribute is None or value is None:
            continue
        current = getattr(target, attribute)
        if isinstance(current, bytes):
            if not isinstance(value, str):
                raise ValueError(f"{what}: {key} is not base64 text")
            try:
                value = base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"{what}: {key}: {exc}") from None
        elif isinstance(current, str) != isinstance(value, str) or isinstance(
            value, (bool, float, list, dict)
        ):
            raise ValueError(f"{what}: {key} has the wrong type")
        setattr(target, attribute, value)


def decode_object(text: str, make: Callable[[], T], fields: dict[str, str], what: str) -> T:
    """One JSON object into a new ``make()`` record. Raises ValueError."""
    record = make()
    fill(json.loads(text), record, fields, what)
    return record


def decode_list(text: str, make: Callable[[], T], fields: dict[str, str], what: str) -> list[T]:
    """A JSON list of objects into new ``make()`` records. Raises ValueError."""
    records = json.loads(text)
    if not isinstance(records, list):
        raise ValueError(f"{what}: not a JSON list")
    decoded = []
    for item in records:
        record = make()
        fill(item, record, fields, what)
        decoded.append(record)
    return decoded
