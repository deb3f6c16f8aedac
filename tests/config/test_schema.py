"""Field and Section: key normalisation in one place, unknown keys, defaults, structured errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nodeagent.config import REQUIRED, ConfigError, Field, Invalid, ListOf, Section, load_yaml, positive_int


@dataclass(frozen=True)
class Target:
    size: int = 7
    name: str = "x"


def check(values: dict) -> None:
    if values["name"] == "bad":
        raise Invalid("name", "is bad")


SECTION = Section((Field("size", parse=positive_int), Field("name")), target=Target, check=check)
OUTER = Section((Field("items", REQUIRED, parse=ListOf(SECTION, empty="no items")),))


def read(text: str) -> dict:
    return OUTER.read(load_yaml(text, "f.yaml"))


def test_defaults_come_from_the_target_and_keys_are_normalised() -> None:
    assert SECTION({}) == Target()
    assert SECTION({"size": 3}) == Target(size=3)
    dashed = Section((Field("read_from", "head"),))
    assert dashed.read({"read-from": "tail"}) == {"read_from": "tail"}
    assert dashed.read({"read_from": None}) == {"read_from": "head"}  # null: the default


def test_errors_carry_key_path_file_and_line() -> None:
    with pytest.raises(ConfigError) as error:
        read("items:\n  - size: 1\n  - size: 0\n")
    assert error.value.key_path == ("items", 1, "size")
    assert str(error.value) == "f.yaml:3: items[1].size: must be greater than 0, got 0"


def test_unknown_keys_name_the_known_ones() -> None:
    with pytest.raises(ConfigError) as error:
        read("items:\n  - sise: 1\n")
    assert str(error.value) == "f.yaml:2: items[0].sise: unknown key (expected one of name, size)"
    options = Section((Field("path"),), subject="a file sink")
    with pytest.raises(ConfigError, match=r"pth: unknown option for a file sink \(known: path\)"):
        options.read({"pth": 1})


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError) as error:
        read("other: 1\n")
    assert error.value.key == "other"  # unknown keys are found first
    with pytest.raises(ConfigError) as error:
        OUTER.read(load_yaml("{}\n", "f.yaml"))
    assert str(error.value) == "f.yaml:1: 'items' is required"
    with pytest.raises(ConfigError, match="path: required for a file sink"):
        Section((Field("path", REQUIRED),), subject="a file sink").read({})


def test_check_and_list_errors() -> None:
    with pytest.raises(ConfigError) as error:
        read("items:\n  - size: 1\n    name: bad\n")
    assert str(error.value) == "f.yaml:3: items[0].name: is bad"
    with pytest.raises(ConfigError) as error:
        read("items: []\n")
    assert str(error.value) == "f.yaml:1: items: no items"
    with pytest.raises(ConfigError) as error:
        read("items:\n  - 5\n")
    assert str(error.value) == "f.yaml:2: items[0]: expected a mapping, got int"


def test_keys_given_twice_and_non_string_keys() -> None:
    with pytest.raises(ConfigError, match="given twice"):
        Section((Field("read_from"),)).read({"read_from": 1, "read-from": 2})
    with pytest.raises(ConfigError, match="keys must be strings"):
        SECTION.read(load_yaml("1: a\n", "f.yaml"))


def test_within_adds_the_enclosing_key_and_keeps_the_place() -> None:
    inner = ConfigError("bad", key="size", file="f.yaml", line=4)
    assert str(inner.within("logs", "inputs", 0)) == "f.yaml:4: logs.inputs[0].size: bad"
    bare = ConfigError("bad", key="size")
    assert str(bare.within("x", file="g.yaml", line=2)) == "g.yaml:2: x.size: bad"
