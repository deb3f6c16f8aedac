"""Numbers parsed exactly as Go's ``strconv`` parses them, so a value node_exporter reports is reported
here and a value it rejects is rejected here.

Python's ``int()`` and ``float()`` differ from Go in ways that matter for kernel files: they accept
surrounding whitespace, Unicode digits, underscores anywhere, hexadecimal floats without a ``p``
exponent (``float.fromhex``) and signed NaNs, and ``float()`` turns an overflow into ``inf`` where Go
reports a range error. The rules implemented here (from the ``strconv`` documentation and its tests):

- :func:`parse_int` / :func:`parse_uint` are ``ParseInt(s, base, 64)`` / ``ParseUint(s, base, 64)``.
  With ``base=0`` the base comes from the prefix (``0x``, ``0o``, ``0b``, a bare leading ``0`` = octal)
  and, for base 0 only, underscores may separate digits (``1_000``, ``0x_1F``; not leading, trailing
  or doubled). With an explicit base no underscore is accepted.
- :func:`parse_float` is ``ParseFloat(s, 64)``: decimal and hexadecimal literals (a hexadecimal
  mantissa needs a ``p`` exponent), ``inf``/``infinity``/``nan`` in any case (NaN without a sign),
  underscores between digits as in Go literals, and a range error for values beyond float64.

Errors are :class:`NumSyntaxError` or :class:`NumRangeError`, both ValueError.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

MAX_UINT64 = (1 << 64) - 1
MIN_INT64 = -(1 << 63)
MAX_INT64 = (1 << 63) - 1


class NumSyntaxError(ValueError):
    """Go's strconv.ErrSyntax: the text is not a number of the requested kind."""


class NumRangeError(ValueError):
    """Go's strconv.ErrRange: the number does not fit the requested type."""


_DIGIT_VALUES = {c: i for i, c in enumerate("0123456789abcdefghijklmnopqrstuvwxyz")}
_DIGIT_VALUES.update({c.upper(): i for c, i in list(_DIGIT_VALUES.items()) if c.isalpha()})
_PREFIX_BASES = {"b": 2, "o": 8, "x": 16}


def underscores_ok(text: str) -> bool:
    """Go's rule for digit separators: an underscore sits between two digits, or between a base
    prefix (0b, 0o, 0x) and a digit. Signs, dots and exponents count as non-digits."""
    if text[:1] in ("+", "-"):
        text = text[1:]
    saw = "^"  # ^ start, 0 digit or base prefix, _ underscore, ! anything else
    index = 0
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1] in "bBoOxX":
        index, saw, hexadecimal = 2, "0", text[1] in "xX"
    for char in text[index:]:
        if "0" <= char <= "9" or (hexadecimal and char in "abcdefABCDEF"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def parse_uint(text: str, base: int = 10) -> int:
    """``strconv.ParseUint(text, base, 64)``; base 0 or 2..36."""
    # Fast path for what kernel files hold almost always: plain decimal digits.
    if base in (10, 0) and text.isascii() and text.isdigit() and (base == 10 or text[0] != "0"):
        value = int(text)
        if value > MAX_UINT64:
            raise NumRangeError(f"value out of range: {text[:40]!r}")
        return value
    if not text:
        raise NumSyntaxError("empty number")
    body = text
    underscores_allowed = base == 0
    if base == 0:
        base = 10
        if body[0] == "0":
            prefix_base = _PREFIX_BASES.get(body[1:2].lower()) if len(body) >= 3 else None
            if prefix_base is not None:
                base, body = prefix_base, body[2:]
            else:
                base, body = 8, body[1:]
    elif not 2 <= base <= 36:
        raise ValueError(f"invalid base {base}")
    value = 0
    saw_underscore = False
    for char in body:
        if char == "_" and underscores_allowed:
            saw_underscore = True
            continue
        digit = _DIGIT_VALUES.get(char, 99)
        if digit >= base:
            raise NumSyntaxError(f"invalid syntax: {text[:40]!r}")
        value = value * base + digit
        if value > MAX_UINT64:
            raise NumRangeError(f"value out of range: {text[:40]!r}")
    if saw_underscore and not underscores_ok(text):
        raise NumSyntaxError(f"invalid syntax: {text[:40]!r}")
    return value


def parse_int(text: str, base: int = 10) -> int:
    """``strconv.ParseInt(text, base, 64)``: an optional sign, then :func:`parse_uint`'s syntax."""
    if not text:
        raise NumSyntaxError("empty number")
    negative = text[0] == "-"
    body = text[1:] if text[0] in "+-" else text
    try:
        magnitude = parse_uint(body, base)
    except NumRangeError:
        raise NumRangeError(f"value out of range: {text[:40]!r}") from None
    except NumSyntaxError:
        raise NumSyntaxError(f"invalid syntax: {text[:40]!r}") from None
    if negative:
        if magnitude > -MIN_INT64:
            raise NumRangeError(f"value out of range: {text[:40]!r}")
        return -magnitude
    if magnitude > MAX_INT64:
        raise NumRangeError(f"value out of range: {text[:40]!r}")
    return magnitude


_DIGITS = {10: "0123456789", 16: "0123456789abcdefABCDEF"}


def parse_uints(fields: Sequence[str], base: int = 10) -> list[int]:
    """:func:`parse_uint` of each field, checked at once for the common case (a table row of plain
    digits, as /proc/diskstats or /proc/net/dev): one pass over the joined text instead of one call
    per field, which made those parsers 3x slower."""
    digits = _DIGITS.get(base)
    if digits is not None and fields and not "".join(fields).strip(digits) and all(fields):
        values = [int(field, base) for field in fields]
        if max(values) <= MAX_UINT64:
            return values
    return [parse_uint(field, base) for field in fields]


def parse_floats(fields: Sequence[str]) -> list[float]:
    """:func:`parse_float` of each field, with :func:`parse_uints`' shortcut for rows of plain digits."""
    if fields and not "".join(fields).strip("0123456789") and all(fields):
        values = [float(field) for field in fields]
        if max(values) != math.inf:
            return values
    return [parse_float(field) for field in fields]


# Decimal: digits with at most one dot, at least one digit, optional exponent with at least one digit.
_DECIMAL = re.compile(r"[+-]?(?=\.?[0-9])[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]*[0-9][0-9_]*)?")
# Hexadecimal: 0x, hex digits with at most one dot and at least one digit, a mandatory p exponent.
_HEXADECIMAL = re.compile(
    r"[+-]?0[xX](?=_*\.?_*[0-9a-fA-F])[0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?[pP][+-]?[0-9_]*[0-9][0-9_]*"
)
_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_SPECIAL.update({"infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf})


def parse_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)``."""
    if text.isascii() and text.isdigit():  # fast path: plain digits, the common case in kernel files
        value = float(text)
        if value == math.inf:
            raise NumRangeError(f"value out of range: {text[:40]!r}")
        return value
    if len(text) <= 9:
        special = _SPECIAL.get(text.lower())
        if special is not None:
            return special
    if _DECIMAL.fullmatch(text):
        hexadecimal = False
    elif _HEXADECIMAL.fullmatch(text):
        hexadecimal = True
    else:
        raise NumSyntaxError(f"invalid syntax: {text[:40]!r}")
    if "_" in text:
        if not underscores_ok(text):
            raise NumSyntaxError(f"invalid syntax: {text[:40]!r}")
        text = text.replace("_", "")
    try:
        value = float.fromhex(text) if hexadecimal else float(text)
    except OverflowError:
        value = math.inf
    if math.isinf(value):
        raise NumRangeError(f"value out of range: {text[:40]!r}")
    return value
