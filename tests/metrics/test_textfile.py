"""textfile collector and the text-format parser it uses (node_exporter's expfmt rules)."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from nodeagent.metrics import _promtext
from nodeagent.metrics.exposition import format_value, render_text
from nodeagent.metrics.registry import Paths, build_collectors
from nodeagent.metrics.scrape import render, run_collectors
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


# --- hostile directories ------------------------------------------------------------------------


def textfile_lines(directory: Path, **options: object) -> list[str]:
    """Sample lines of a textfile scrape, from the encoded page (where U+FFFD replacement happens)."""
    values = {"collector.textfile.directory": str(directory)}
    values.update({f"collector.textfile.{key.replace('_', '-')}": value for key, value in options.items()})
    body = render(run_collectors(build_collectors(["textfile"], Paths(), values))).decode()
    return [line for line in body.splitlines() if line and not line.startswith(("#", "node_scrape_"))]


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Everything the records say, extra fields included."""
    return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)


def _within(seconds: float, fn, *args):  # type: ignore[no-untyped-def]
    """fn(*args) in a daemon thread; fails instead of hanging the suite when fn blocks."""
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(fn(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"blocked for more than {seconds}s"
    return outcome[0]


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    tf = write_tree(tmp_path / "tf", {"good.prom": "good 1\n"})
    os.mkfifo(tf / "wedge.prom")
    lines = _within(10, textfile_lines, tf)
    assert "good 1" in lines and "node_textfile_scrape_error 1" in lines


def test_links_out_of_the_directory_are_not_read_and_not_quoted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("leaked_secret 1\n# root:$6$SECRETHASH\n")
    tf = write_tree(tmp_path / "tf", {"good.prom": "good 1\n", "inside.txt": "inside 2\n"})
    (tf / "x.prom").symlink_to(secret)
    (tf / "zero.prom").symlink_to("/dev/zero")
    (tf / "alias.prom").symlink_to(tf / "inside.txt")  # a link within the directory is fine
    caplog.set_level(logging.DEBUG)
    lines = _within(10, textfile_lines, tf)
    assert "good 1" in lines and "inside 2" in lines
    assert "node_textfile_scrape_error 1" in lines
    assert not any("leaked_secret" in line for line in lines)
    assert "SECRETHASH" not in logged(caplog) and "leaked_secret" not in logged(caplog)
    assert "outside the allowed roots" in logged(caplog) and "not a regular file" in logged(caplog)


def test_reads_are_bounded_per_file_and_per_scrape(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    huge_line = "big " + "9" * 50_000 + "\n"  # one line, no newline until the end
    tf = write_tree(
        tmp_path / "tf",
        {
            "a.prom": "a 1\n",  # 4 bytes
            "b_huge.prom": huge_line,  # 1000 bytes read, then refused: they count
            "c.prom": "c 3\n" + "# pad\n" * 114,  # 688 bytes
            "d.prom": "d 4\n" + "# pad\n" * 10,  # 64 bytes, 8 left
        },
    )
    caplog.set_level(logging.ERROR)
    lines = textfile_lines(tf, max_file_bytes=1000, max_scrape_bytes=1700)
    assert "a 1" in lines and "c 3" in lines
    assert not any(line.startswith(("big", "d ")) for line in lines)  # too large; budget used up
    assert "node_textfile_scrape_error 1" in lines
    text = logged(caplog)
    assert "larger than 1000 bytes" in text and "budget is used up" in text
    assert "9" * 300 not in text


def test_a_parse_error_quotes_at_most_a_few_hundred_bytes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tf = write_tree(tmp_path / "tf", {"bad.prom": 'bad{l="' + "x" * 100_000 + '" 1\n'})
    caplog.set_level(logging.ERROR)
    assert "node_textfile_scrape_error 1" in textfile_lines(tf)
    text = logged(caplog)
    assert "cannot collect textfile" in text and "x" * 300 not in text


def test_duplicate_series_across_files_are_a_scrape_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tf = write_tree(
        tmp_path / "tf",
        {"a.prom": 'dup{k="1"} 1\ndup{k="2"} 2\n', "b.prom": 'dup{k="1"} 10\ndup{k="3"} 3\n'},
    )
    caplog.set_level(logging.ERROR)
    lines = textfile_lines(tf)
    assert [line for line in lines if line.startswith("dup")] == [
        'dup{k="1"} 1',
        'dup{k="2"} 2',
        'dup{k="3"} 3',
    ]
    assert "node_textfile_scrape_error 1" in lines
    assert "same series more than once" in logged(caplog)


def test_bytes_that_are_not_utf8_become_replacement_characters(tmp_path: Path) -> None:
    tf = tmp_path / "tf"
    tf.mkdir()
    (tf / "labels.prom").write_bytes(b'm{l="a\xff\xfeb"} 1\n')
    with open(os.path.join(os.fsencode(tf), b"name\xff.prom"), "wb") as fh:
        fh.write(b"n 2\n")
    lines = textfile_lines(tf)
    assert 'm{l="a\ufffdb"} 1' in lines
    assert "n 2" in lines
    assert any(line.startswith("node_textfile_mtime_seconds") and "name\ufffd.prom" in line for line in lines)
