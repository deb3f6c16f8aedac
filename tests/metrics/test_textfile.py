"""textfile collector and the text-format parser it uses (node_exporter's expfmt rules)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from nodeagent.metrics import _promtext
from nodeagent.metrics.exposition import format_value, render_text
from nodeagent.metrics.registry import Paths, build_collectors
from nodeagent.metrics.scrape import run_collectors
from nodeagent.metrics.textfile import read_textfiles
from tests.conftest import NODE_EXPORTER_FIXTURE, require_shared
from tests.metrics.conftest import Scraped, write_tree

FIXTURE_TEXTFILES = NODE_EXPORTER_FIXTURE / "textfile"


def test_textfile_disabled_reports_no_error(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    result = scrape("textfile")
    lines, ok = result.lines, result.ok
    assert ok and lines == ["node_textfile_scrape_error 0"]


def test_textfile_missing_directory_is_a_scrape_error(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    result = scrape("textfile", directory=str(tmp_path / "absent"))
    lines, ok = result.lines, result.ok
    assert ok and lines == ["node_textfile_scrape_error 1"]


def test_textfile_bad_files_are_skipped_and_flagged(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path / "tf",
        {
            "a_good.prom": '# TYPE jobs counter\njobs{queue="x"} 3\n# TYPE up gauge\nup 1\nup{extra="1"} 2\n',
            "b_garbage.prom": b"\x00\xff\xfe not metrics {{{\n",
            "c_timestamp.prom": "ts_metric 1 1441205977284\n",
            "d_type_late.prom": "late 1\n# TYPE late gauge\n",
            "ignored.txt": "not 1 2 3 read\n",
        },
    )
    result = scrape("textfile", directory=str(tmp_path / "tf"))
    lines, ok = result.lines, result.ok
    assert ok
    mtime = int(os.stat(tmp_path / "tf/a_good.prom").st_mtime)
    assert lines == [
        'jobs{queue="x"} 3',  # a counter keeps the name it was written with
        f'node_textfile_mtime_seconds{{file="{tmp_path}/tf/a_good.prom"}} {format_value(mtime)}',
        "node_textfile_scrape_error 1",
        'up{extra=""} 1',  # labels some series lack are added empty
        'up{extra="1"} 2',
    ]


def test_textfile_merges_files_and_drops_contradicting_families(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(
        tmp_path / "tf",
        {
            "a.prom": '# HELP shared One help.\n# TYPE shared gauge\nshared{f="a"} 1\n'
            "# TYPE kind gauge\nkind 1\n",
            "b.prom": '# HELP shared One help.\n# TYPE shared gauge\nshared{f="b"} 2\n',
            "c.prom": '# HELP shared Another help.\nshared{f="c"} 3\n# TYPE kind counter\nkind{f="c"} 4\n',
        },
    )
    result = read_textfiles(str(tmp_path / "tf"))
    assert result.errored
    assert [len(family.series) for family in result.families["shared"]] == [1, 1]
    assert len(result.families["kind"]) == 1
    lines = scrape("textfile", directory=str(tmp_path / "tf")).lines
    assert 'shared{f="a"} 1' in lines and 'shared{f="b"} 2' in lines and 'shared{f="c"} 3' not in lines


def test_textfile_directory_glob(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"d1/x.prom": "x 1\n", "d2/y.prom": "y 2\n"})
    lines = scrape("textfile", directory=str(tmp_path / "d*")).lines
    assert "x 1" in lines and "y 2" in lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# HELP a x\n# HELP a y\na 1\n", "second HELP"),
        ("a 1\n# TYPE a gauge\n", "TYPE"),
        ("# TYPE a sometype\na 1\n", "unknown metric type"),
        ('a{b="1",b="2"} 1\n', "duplicate label"),
        ('a{b="\\q"} 1\n', "escape"),
        ('a{b="1"', "expected ',' or '}'"),
        ('a{b="1', "unterminated"),
        ("a 1 2 3\n", "unexpected text"),
        ("a one\n", "invalid value"),
        ("a 0x1p3\n", "invalid value"),
        ("1a 1\n", "invalid metric name"),
        ('a{__name__="b"} 1\n', "reserved"),
    ],
)
def test_text_parser_rejects_what_node_exporter_rejects(text: str, message: str) -> None:
    with pytest.raises(_promtext.TextParseError, match=message):
        _promtext.parse_text(text)


def test_text_parser_groups_summaries_and_histograms() -> None:
    families = _promtext.parse_text(
        '# TYPE s summary\ns{a="1",quantile="0.5"} 1\ns_sum{a="1"} 5\ns_count{a="1"} 2\n'
        's{a="2",quantile="0.9"} 3\n'
        '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n'
        "# just a comment\n  indented 1\n"
    )
    summary = families["s"].series
    assert [(x.labels, x.quantiles, x.sum, x.count) for x in summary] == [
        ({"a": "1"}, {0.5: 1.0}, 5.0, 2.0),
        ({"a": "2"}, {0.9: 3.0}, 0.0, 0.0),
    ]
    assert families["h"].series[0].buckets == {1.0: 1.0, math.inf: 2.0}
    assert families["indented"].series[0].value == 1.0


def test_textfile_matches_node_exporters_textfile_fixtures() -> None:
    """Every case of node_exporter's own textfile tests: same series, values and scrape_error."""
    root = require_shared(FIXTURE_TEXTFILES)
    for expected in sorted(root.glob("*.out")):
        case = expected.stem
        directory = {
            "glob_extra_dimension": str(root / "*_extra_dimension"),
            "nonexistent_path": str(root / "nonexistent"),
        }.get(case, str(root / case))
        paths = Paths()
        text = render_text(
            run_collectors(build_collectors(["textfile"], paths, {"collector.textfile.directory": directory}))
        )
        assert _series(text) == _series(expected.read_text()), case


def _series(text: str) -> list[tuple[str, frozenset[tuple[str, str]], str]]:
    """(name, label set, value) of each sample line, ignoring go_*, mtime and scrape metrics."""
    out = []
    for line in text.splitlines():
        if line.startswith(("#", "go_", "node_textfile_mtime", "node_scrape_")) or not line:
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        pairs = frozenset(tuple(pair.split("=", 1)) for pair in labels.rstrip("}").split(",") if pair)
        out.append((name, pairs, value))
    return sorted(out)
