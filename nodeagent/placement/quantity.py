"""Kubernetes resource quantities ("250m", "1Gi", "1e3") as exact numbers, and back to short text."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|n|u|m|k|M|G|T|P|E)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity."""


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Fraction:
    match = _QUANTITY.match(text.strip())
    if not match:
        raise QuantityError(f"{text!r} is not a quantity")
    number = Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    return number * Fraction(10) ** int(suffix[1:])


def parse_quantity(value: object) -> Fraction:
    """Exact value of a quantity given as text or as a YAML/JSON number."""
    if isinstance(value, bool) or value is None:
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"{value!r} is not a quantity")
        return Fraction(str(value))
    if isinstance(value, str):
        return _parse_text(value)
    raise QuantityError(f"{value!r} is not a quantity")


def resource_units(resource: str, value: object) -> int:
    """Integer amount the scheduler compares: millicores for cpu, whole units (rounded up) otherwise."""
    if isinstance(value, str):
        return _text_units(resource == "cpu", value)
    quantity = parse_quantity(value)
    return math.ceil(quantity * 1000 if resource == "cpu" else quantity)


@lru_cache(maxsize=8192)
def _text_units(milli: bool, text: str) -> int:
    # Clusters repeat the same few request strings across thousands of pods: convert each once.
    quantity = _parse_text(text)
    return math.ceil(quantity * 1000 if milli else quantity)


def format_units(resource: str, amount: int) -> str:
    """Short human text for an amount produced by resource_units."""
    if resource == "cpu":
        return str(amount // 1000) if amount % 1000 == 0 else f"{amount}m"
    if resource == "memory" or resource == "ephemeral-storage" or resource.startswith("hugepages-"):
        for suffix, size in (("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if amount and amount % size == 0:
                return f"{amount // size}{suffix}"
        if abs(amount) >= 2**20:
            return f"{amount / 2**20:.1f}Mi"
    return str(amount)
