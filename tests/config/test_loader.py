"""The line-aware YAML loader: lines of keys and items, duplicate keys, bad YAML, unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeagent.config import ConfigError, LineDict, LineList, load_yaml, load_yaml_file


def test_mappings_and_lists_remember_file_and_lines() -> None:
    data = load_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n", "f.yaml")
    assert isinstance(data, LineDict) and data.file == "f.yaml" and data.line == 1
    assert (data.line_of("a"), data.line_of("b"), data.line_of("missing")) == (1, 2, 1)
    items = data["b"]
    assert isinstance(items, LineList) and items.item_lines == [3, 4]
    assert items.line_of(1) == 4 and items.line_of(7) == 3
    assert items[1].line_of("c") == 4


def test_subset_keeps_lines() -> None:
    data = load_yaml("a: 1\nb: 2\nc: 3\n", "f.yaml")
    part = data.subset(["b", "c"])
    assert part == {"b": 2, "c": 3} and part.line_of("c") == 3 and part.file == "f.yaml"


def test_duplicate_key_names_key_and_line() -> None:
    with pytest.raises(ConfigError) as error:
        load_yaml("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert str(error.value) == "f.yaml:3: a: duplicate key"


def test_bad_yaml_names_the_line() -> None:
    with pytest.raises(ConfigError) as error:
        load_yaml("a: [1\nb: 2\n", "f.yaml")
    assert error.value.file == "f.yaml" and error.value.line in (2, 3)
    assert "invalid YAML" in error.value.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load_yaml_file(tmp_path / "absent.yaml")
    assert "cannot read config file" in str(error.value)
