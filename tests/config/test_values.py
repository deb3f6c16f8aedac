"""Value parsers: each returns the typed value or raises ValueError with a short reason."""

from __future__ import annotations

import pytest

from nodeagent.config import (
    bounded,
    non_negative_int,
    parse_bool,
    parse_duration,
    parse_headers,
    parse_http_url,
    parse_int,
    parse_regex,
    parse_size,
    parse_string_list,
    parse_url_path,
    positive_duration,
    positive_int,
)


@pytest.mark.parametrize(
    ("raw", "value"), [(True, True), ("yes", True), ("Off", False), (0, False), ("1", True)]
)
def test_bool(raw: object, value: bool) -> None:
    assert parse_bool(raw) is value


@pytest.mark.parametrize(("raw", "value"), [(5, 5), ("  12 ", 12), (3.0, 3), ("-4", -4)])
def test_int(raw: object, value: int) -> None:
    assert parse_int(raw) == value


@pytest.mark.parametrize("raw", [True, 3.5, "x", None, [1], "9" * 400, 2**64])
def test_bad_int(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_int(raw)


def test_bounds_are_parameters() -> None:
    assert positive_int(1) == 1 and non_negative_int(0) == 0
    with pytest.raises(ValueError, match="must be greater than 0, got 0"):
        positive_int(0)
    with pytest.raises(ValueError, match="must not be negative"):
        non_negative_int(-1)
    with pytest.raises(ValueError, match="must be at least 64, got 10"):
        bounded(parse_size, 64)(10)
    with pytest.raises(ValueError, match="must be greater than 0"):
        positive_duration("0s")


def test_sizes() -> None:
    assert parse_size(100) == 100
    assert parse_size("256KiB") == 262144
    assert parse_size("1M") == parse_size("1MiB") == 1 << 20
    assert parse_size("1MB") == 1_000_000
    assert parse_size("1.5k") == 1536
    for bad in ("-1", True, "lots", "9" * 400, float("inf")):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_durations() -> None:
    assert parse_duration("1m30s") == 90.0
    assert parse_duration("500ms") == 0.5
    assert parse_duration(2) == 2.0
    assert parse_duration("1.5") == 1.5
    for bad in ("soon", "-1s", -1, True, float("nan"), float("inf"), "nan", "inf", "1" * 400 + "s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_regex() -> None:
    assert parse_regex("^a+$") == "^a+$"
    with pytest.raises(ValueError, match="invalid regular expression"):
        parse_regex("(")


def test_url_path_and_http_url() -> None:
    assert parse_url_path("/metrics") == "/metrics"
    with pytest.raises(ValueError):
        parse_url_path("metrics")
    assert parse_http_url("http://h:3100") == "http://h:3100"
    for bad in ("h:3100", "ftp://h", "http://h:99999"):
        with pytest.raises(ValueError):
            parse_http_url(bad)


def test_headers_and_string_lists() -> None:
    assert parse_headers({"X-A": 1}) == {"X-A": "1"}
    with pytest.raises(ValueError, match="invalid header name"):
        parse_headers({"X A": "1"})
    with pytest.raises(ValueError, match="line breaks"):
        parse_headers({"X-A": "1\nX-B: 2"})
    assert parse_string_list("a") == ("a",) and parse_string_list(["a", "b"]) == ("a", "b")
    with pytest.raises(ValueError):
        parse_string_list(["a", ""])
