"""Go's strconv rules: the test vectors of Go's own atoi_test.go and atof_test.go (inputs and expected
outcomes copied as facts), plus the cases node_exporter's collectors meet in sysfs."""

from __future__ import annotations

import math

import pytest

from nodeagent.metrics._promtext import go_float
from nodeagent.metrics.host.gonum import (
    NumRangeError,
    NumSyntaxError,
    parse_float,
    parse_floats,
    parse_int,
    parse_uint,
    parse_uints,
)

SYNTAX, RANGE = NumSyntaxError, NumRangeError

# ParseUint(s, 10, 64)
UINT_BASE10 = [
    ("", SYNTAX),
    ("0", 0),
    ("1", 1),
    ("12345", 12345),
    ("012345", 12345),
    ("12345x", SYNTAX),
    ("98765432100", 98765432100),
    ("18446744073709551615", (1 << 64) - 1),
    ("18446744073709551616", RANGE),
    ("18446744073709551620", RANGE),
    ("1_2_3_4_5", SYNTAX),  # base 10: no underscores
    ("_12345", SYNTAX),
    ("1__2345", SYNTAX),
    ("12345_", SYNTAX),
    ("-0", SYNTAX),
    ("-1", SYNTAX),
    ("+1", SYNTAX),
]

# ParseUint(s, 0, 64)
UINT_BASE0 = [
    ("", SYNTAX),
    ("0", 0),
    ("0x", SYNTAX),
    ("0X", SYNTAX),
    ("1", 1),
    ("12345", 12345),
    ("012345", 0o12345),
    ("0x12345", 0x12345),
    ("0X12345", 0x12345),
    ("12345x", SYNTAX),
    ("0xabcdefg123", SYNTAX),
    ("123456789abc", SYNTAX),
    ("98765432100", 98765432100),
    ("18446744073709551615", (1 << 64) - 1),
    ("18446744073709551616", RANGE),
    ("18446744073709551620", RANGE),
    ("0xFFFFFFFFFFFFFFFF", (1 << 64) - 1),
    ("0x10000000000000000", RANGE),
    ("01777777777777777777777", (1 << 64) - 1),
    ("01777777777777777777778", SYNTAX),
    ("02000000000000000000000", RANGE),
    ("0200000000000000000000", 1 << 61),
    ("0b", SYNTAX),
    ("0B", SYNTAX),
    ("0b101", 5),
    ("0B101", 5),
    ("0o", SYNTAX),
    ("0O", SYNTAX),
    ("0o377", 255),
    ("0O377", 255),
    # underscores: base 0 only, between digits or after a base prefix
    ("1_2_3_4_5", 12345),
    ("_12345", SYNTAX),
    ("1__2345", SYNTAX),
    ("12345_", SYNTAX),
    ("1_000", 1000),
    ("0x_1_2_3_4_5", 0x12345),
    ("_0x12345", SYNTAX),
    ("0x__12345", SYNTAX),
    ("0x1__2345", SYNTAX),
    ("0x1234__5", SYNTAX),
    ("0x12345_", SYNTAX),
    ("01234__5", SYNTAX),
    ("012345_", SYNTAX),
    ("0o_1_2_3_4_5", 0o12345),
    ("0o__12345", SYNTAX),
    ("0b_1_0_1", 5),
    ("0b__101", SYNTAX),
]

# ParseInt(s, 10, 64)
INT_BASE10 = [
    ("", SYNTAX),
    ("0", 0),
    ("-0", 0),
    ("+0", 0),
    ("1", 1),
    ("-1", -1),
    ("+1", 1),
    ("12345", 12345),
    ("-12345", -12345),
    ("012345", 12345),
    ("-012345", -12345),
    ("98765432100", 98765432100),
    ("-98765432100", -98765432100),
    ("9223372036854775807", (1 << 63) - 1),
    ("-9223372036854775807", -((1 << 63) - 1)),
    ("9223372036854775808", RANGE),
    ("-9223372036854775808", -(1 << 63)),
    ("9223372036854775809", RANGE),
    ("-9223372036854775809", RANGE),
    ("-1_2_3_4_5", SYNTAX),  # base 10: no underscores
    ("-_12345", SYNTAX),
    ("_12345", SYNTAX),
    ("1__2345", SYNTAX),
    ("12345_", SYNTAX),
    ("123%45", SYNTAX),
    ("+", SYNTAX),
    ("-", SYNTAX),
    (" 1", SYNTAX),
    ("1 ", SYNTAX),
    ("1\n", SYNTAX),
    ("\u0661", SYNTAX),  # a Unicode digit: Go reads ASCII only
]

# ParseInt(s, base, 64)
INT_BASES = [
    ("", 0, SYNTAX),
    ("0", 0, 0),
    ("-0", 0, 0),
    ("+0", 0, 0),
    ("1", 0, 1),
    ("-1", 0, -1),
    ("+1", 0, 1),
    ("12345", 0, 12345),
    ("-12345", 0, -12345),
    ("012345", 0, 0o12345),
    ("-012345", 0, -0o12345),
    ("0x12345", 0, 0x12345),
    ("-0X12345", 0, -0x12345),
    ("12345x", 0, SYNTAX),
    ("-12345x", 0, SYNTAX),
    ("98765432100", 0, 98765432100),
    ("-98765432100", 0, -98765432100),
    ("9223372036854775807", 0, (1 << 63) - 1),
    ("-9223372036854775807", 0, -((1 << 63) - 1)),
    ("9223372036854775808", 0, RANGE),
    ("-9223372036854775808", 0, -(1 << 63)),
    ("9223372036854775809", 0, RANGE),
    ("-9223372036854775809", 0, RANGE),
    # other bases
    ("g", 17, 16),
    ("10", 25, 25),
    ("holycow", 35, (((((17 * 35 + 24) * 35 + 21) * 35 + 34) * 35 + 12) * 35 + 24) * 35 + 32),
    ("holycow", 36, (((((17 * 36 + 24) * 36 + 21) * 36 + 34) * 36 + 12) * 36 + 24) * 36 + 32),
    # base 2
    ("0", 2, 0),
    ("-1", 2, -1),
    ("1010", 2, 10),
    ("1000000000000000", 2, 1 << 15),
    ("1" * 63, 2, (1 << 63) - 1),
    ("1" + "0" * 63, 2, RANGE),
    ("-1" + "0" * 63, 2, -(1 << 63)),
    ("-1" + "0" * 62 + "1", 2, RANGE),
    # base 8
    ("-10", 8, -8),
    ("57635436545", 8, 0o57635436545),
    ("100000000", 8, 1 << 24),
    # base 16
    ("10", 16, 16),
    ("-123456789abcdef", 16, -0x123456789ABCDEF),
    ("7fffffffffffffff", 16, (1 << 63) - 1),
    ("0x10", 16, SYNTAX),  # a prefix is only read with base 0
    # underscores
    ("-0x_1_2_3_4_5", 0, -0x12345),
    ("0x_1_2_3_4_5", 0, 0x12345),
    ("-_0x12345", 0, SYNTAX),
    ("_-0x12345", 0, SYNTAX),
    ("-0x1__2345", 0, SYNTAX),
    ("-0x12345_", 0, SYNTAX),
    ("-0o_1_2_3_4_5", 0, -0o12345),
    ("-1_2_3_4_5", 0, -12345),
    ("1_2_3_4_5", 16, SYNTAX),
    # node_exporter's sysfs values (netclass flags, power supply capacity)
    ("0x1003", 0, 4099),
    ("010", 0, 8),
    ("08", 0, SYNTAX),
    ("0b11", 0, 3),
    ("0o17", 0, 15),
    ("1.5", 0, SYNTAX),
    ("abc", 0, SYNTAX),
    ("0x1f", 0, 31),
    ("-12", 0, -12),
    ("1__0", 0, SYNTAX),
    ("12a", 0, SYNTAX),
]


def _check(outcome: int | float | type[Exception], call: object) -> None:
    if isinstance(outcome, type) and issubclass(outcome, Exception):
        with pytest.raises(outcome):
            call()  # type: ignore[operator]
    else:
        assert call() == outcome  # type: ignore[operator]


@pytest.mark.parametrize(("text", "outcome"), UINT_BASE10)
def test_parse_uint_base_10(text: str, outcome: int | type[Exception]) -> None:
    _check(outcome, lambda: parse_uint(text))


@pytest.mark.parametrize(("text", "outcome"), UINT_BASE0)
def test_parse_uint_base_0(text: str, outcome: int | type[Exception]) -> None:
    _check(outcome, lambda: parse_uint(text, 0))


@pytest.mark.parametrize(("text", "outcome"), INT_BASE10)
def test_parse_int_base_10(text: str, outcome: int | type[Exception]) -> None:
    _check(outcome, lambda: parse_int(text))


@pytest.mark.parametrize(("text", "base", "outcome"), INT_BASES)
def test_parse_int_bases(text: str, base: int, outcome: int | type[Exception]) -> None:
    _check(outcome, lambda: parse_int(text, base))


def test_invalid_bases_are_refused() -> None:
    for base in (-1, 1, 37):
        with pytest.raises(ValueError):
            parse_int("0", base)


# ParseFloat(s, 64): (input, expected value written as Go prints it, or the error)
FLOATS = [
    ("", SYNTAX),
    ("1", "1"),
    ("+1", "1"),
    ("1x", SYNTAX),
    ("1.1.", SYNTAX),
    ("1e23", "1e+23"),
    ("1E23", "1e+23"),
    ("100000000000000000000000", "1e+23"),
    ("1e-100", "1e-100"),
    ("123456700", "1.234567e+08"),
    ("99999999999999974834176", "9.999999999999997e+22"),
    ("100000000000000000000001", "1.0000000000000001e+23"),
    ("100000000000000008388608", "1.0000000000000001e+23"),
    ("100000000000000016777215", "1.0000000000000001e+23"),
    ("100000000000000016777216", "1.0000000000000003e+23"),
    ("-1", "-1"),
    ("-0.1", "-0.1"),
    ("-0", "-0"),
    ("1e-20", "1e-20"),
    ("625e-3", "0.625"),
    # hexadecimal
    ("0x1p0", "1"),
    ("0x1p1", "2"),
    ("0x1p-1", "0.5"),
    ("0x1ep-1", "15"),
    ("-0x1ep-1", "-15"),
    ("-0x1_ep-1", "-15"),
    ("0x1p-200", "6.223015277861142e-61"),
    ("0x1p200", "1.6069380442589903e+60"),
    ("0x1fFe2.p0", "131042"),
    ("0x1fFe2.P0", "131042"),
    ("-0x2p3", "-16"),
    ("0x0.fp4", "15"),
    ("0x0.fp0", "0.9375"),
    ("0x1e2", SYNTAX),
    ("1p2", SYNTAX),
    # zeros
    ("0", "0"),
    ("0e0", "0"),
    ("-0e0", "-0"),
    ("+0e0", "0"),
    ("0e-0", "0"),
    ("-0e-0", "-0"),
    ("0e+01234567890123456789", "0"),
    ("0.00e-01234567890123456789", "0"),
    ("-0e+01234567890123456789", "-0"),
    ("0x0p+01234567890123456789", "0"),
    ("-0x0.00p-01234567890123456789", "-0"),
    ("0e291", "0"),
    ("0e348", "0"),
    ("0x0p1026", "0"),
    # NaNs and infinities
    ("nan", "NaN"),
    ("NaN", "NaN"),
    ("NAN", "NaN"),
    ("inf", "+Inf"),
    ("-Inf", "-Inf"),
    ("+INF", "+Inf"),
    ("-Infinity", "-Inf"),
    ("+INFINITY", "+Inf"),
    ("Infinity", "+Inf"),
    ("+nan", SYNTAX),
    ("-nan", SYNTAX),
    ("infinit", SYNTAX),
    ("infin", SYNTAX),
    ("nan(1)", SYNTAX),
    # largest float64 and beyond
    ("1.7976931348623157e308", "1.7976931348623157e+308"),
    ("-1.7976931348623157e308", "-1.7976931348623157e+308"),
    ("0x1.fffffffffffffp1023", "1.7976931348623157e+308"),
    ("0x1fffffffffffffp+971", "1.7976931348623157e+308"),
    ("0x.1fffffffffffffp1027", "1.7976931348623157e+308"),
    ("1.7976931348623159e308", RANGE),
    ("-1.7976931348623159e308", RANGE),
    ("0x1p1024", RANGE),
    ("0x2p1023", RANGE),
    ("0x.1p1028", RANGE),
    ("1.7976931348623158e308", "1.7976931348623157e+308"),
    ("0x1.fffffffffffff7fffp1023", "1.7976931348623157e+308"),
    ("1.797693134862315808e308", RANGE),
    ("0x1.fffffffffffff8p1023", RANGE),
    ("1e308", "1e+308"),
    ("2e308", RANGE),
    ("1e309", RANGE),
    ("1e400000", RANGE),
    ("-1e400000", RANGE),
    ("0x1p2000000000", RANGE),
    # denormals and underflow
    ("1e-305", "1e-305"),
    ("1e-322", "1e-322"),
    ("5e-324", "5e-324"),
    ("4e-324", "5e-324"),
    ("3e-324", "5e-324"),
    ("2e-324", "0"),
    ("1e-350", "0"),
    ("1e-400000", "0"),
    ("0x0.00000000000010p-1022", "5e-324"),
    ("0x0.000000000000081p-1022", "5e-324"),
    ("0x0.00000000000008p-1022", "0"),
    ("0x1.fffffffffffff8p-1022", "4.450147717014403e-308"),
    # exponent overflow
    ("1e-4294967296", "0"),
    ("1e+4294967296", RANGE),
    ("1e-18446744073709551616", "0"),
    ("1e+18446744073709551616", RANGE),
    ("0x1p-18446744073709551616", "0"),
    ("0x1p+18446744073709551616", RANGE),
    # parse errors
    ("1e", SYNTAX),
    ("1e-", SYNTAX),
    (".e-1", SYNTAX),
    ("1\x00.2", SYNTAX),
    ("0x", SYNTAX),
    ("0x.", SYNTAX),
    ("0x1", SYNTAX),
    ("0x.1", SYNTAX),
    ("0x1p", SYNTAX),
    ("0x.1p", SYNTAX),
    ("0x1p+", SYNTAX),
    ("0x.1p-", SYNTAX),
    ("0x1p+2", "4"),
    ("0x.1p+2", "0.25"),
    ("0x1p-2", "0.25"),
    ("0x.1p-2", "0.015625"),
    ("2.2250738585072012e-308", "2.2250738585072014e-308"),
    ("2.2250738585072011e-308", "2.225073858507201e-308"),
    ("4.630813248087435e+307", "4.630813248087435e+307"),
    ("22.222222222222222", "22.22222222222222"),
    ("2." + "2" * 4000 + "e+1", "22.22222222222222"),
    ("0x1.1111111111111p222", "7.18931911124017e+66"),
    ("0x2." + "2" * 4000 + "p221", "7.18931911124017e+66"),
    ("1.00000000000000011102230246251565404236316680908203125", "1"),
    ("0x1.00000000000008p0", "1"),
    ("1.00000000000000011102230246251565404236316680908203126", "1.0000000000000002"),
    ("1.00000000000000011102230246251565404236316680908203125" + "0" * 10000 + "1", "1.0000000000000002"),
    ("0x1.00000000000008" + "0" * 10000 + "1p0", "1.0000000000000002"),
    ("1.00000000000000033306690738754696212708950042724609375", "1.0000000000000004"),
    ("1090544144181609348671888949248", "1.0905441441816093e+30"),
    ("1090544144181609348835077142190", "1.0905441441816094e+30"),
    # underscores
    ("1_23.50_0_0e+1_2", "1.235e+14"),
    ("-_123.5e+12", SYNTAX),
    ("+_123.5e+12", SYNTAX),
    ("_123.5e+12", SYNTAX),
    ("1__23.5e+12", SYNTAX),
    ("123_.5e+12", SYNTAX),
    ("123._5e+12", SYNTAX),
    ("123.5_e+12", SYNTAX),
    ("123.5__0e+12", SYNTAX),
    ("123.5e_+12", SYNTAX),
    ("123.5e+_12", SYNTAX),
    ("123.5e_-12", SYNTAX),
    ("123.5e-_12", SYNTAX),
    ("123.5e+1__2", SYNTAX),
    ("123.5e+12_", SYNTAX),
    ("0x_1_2.3_4_5p+1_2", "74565"),
    ("-_0x12.345p+12", SYNTAX),
    ("+_0x12.345p+12", SYNTAX),
    ("_0x12.345p+12", SYNTAX),
    ("0x__12.345p+12", SYNTAX),
    ("0x1__2.345p+12", SYNTAX),
    ("0x12_.345p+12", SYNTAX),
    ("0x12._345p+12", SYNTAX),
    ("0x12.3__45p+12", SYNTAX),
    ("0x12.345_p+12", SYNTAX),
    ("0x12.345p_+12", SYNTAX),
    ("0x12.345p+_12", SYNTAX),
    ("0x12.345p_-12", SYNTAX),
    ("0x12.345p-_12", SYNTAX),
    ("0x12.345p+1__2", SYNTAX),
    ("0x12.345p+12_", SYNTAX),
    ("1_000", "1000"),
    # what Python's float() accepts and Go does not
    (" 1", SYNTAX),
    ("1 ", SYNTAX),
    ("1\n", SYNTAX),
    ("\u0661", SYNTAX),
    ("0x10", SYNTAX),
    ("abc", SYNTAX),
]

_GO_PRINTED = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}


@pytest.mark.parametrize(("text", "outcome"), FLOATS, ids=lambda value: repr(value)[:40])
def test_parse_float(text: str, outcome: str | type[Exception]) -> None:
    if isinstance(outcome, type):
        with pytest.raises(outcome):
            parse_float(text)
        return
    value = parse_float(text)
    expected = _GO_PRINTED.get(outcome)
    if expected is None:
        expected = float(outcome)
    if math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected and math.copysign(1, value) == math.copysign(1, expected)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("1", True),
        ("-2.5", True),
        ("+Inf", True),
        ("NaN", True),
        ("1e3", True),
        ("0x1p3", False),
        ("1_0", False),
    ],
)
def test_text_format_values_are_parse_float_without_p_and_underscores(text: str, accepted: bool) -> None:
    if accepted:
        assert go_float(text) == parse_float(text) or math.isnan(go_float(text))
    else:
        with pytest.raises(ValueError):
            go_float(text)


def test_bulk_parsers_agree_with_the_single_ones() -> None:
    assert parse_uints(["1", "0", "18446744073709551615"]) == [1, 0, (1 << 64) - 1]
    assert parse_uints(["ff", "0A"], 16) == [255, 10]
    assert parse_floats(["10", "0"]) == [10.0, 0.0]
    assert parse_floats(["1.5", "-2"]) == [1.5, -2.0]
    for bad in (["1", ""], ["18446744073709551616"], ["1_0"], ["\u0661"], ["+1"]):
        with pytest.raises(ValueError):
            parse_uints(bad)
    for bad_hex in (["0x1"], ["1_0"], ["g"]):
        with pytest.raises(ValueError):
            parse_uints(bad_hex, 16)
    with pytest.raises(NumRangeError):
        parse_floats(["9" * 400])
