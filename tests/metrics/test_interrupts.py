"""interrupts collector: /proc/interrupts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.interrupts import Interrupt, parse_interrupts
from tests.metrics.conftest import Scraped, write_tree

TABLE = (
    "           CPU0       CPU1\n"
    "  0:         18          0   IO-APIC   2-edge      timer\n"
    "  9:          0          4   IO-APIC   9-fasteoi   acpi\n"
    "NMI:         47          0   Non-maskable interrupts\n"
    "ERR:          0\n"
    "MIS:          0\n"
    "BAD:          x          1   Broken value\n"
)


def test_interrupts_table() -> None:
    parsed = parse_interrupts(TABLE)
    assert parsed["0"] == Interrupt("IO-APIC", "2-edge timer", ["18", "0"])
    assert parsed["NMI"] == Interrupt("Non-maskable interrupts", "", ["47", "0"])
    assert "ERR" not in parsed and "MIS" not in parsed


def test_interrupts_filters_zeros_and_bad_values(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(tmp_path, {"proc/interrupts": TABLE})
    result = scrape("interrupts", include_zeros=False, name_exclude="^9;")
    assert result.ok
    assert result.lines == [
        'node_interrupts_total{cpu="0",devices="",info="Non-maskable interrupts",type="NMI"} 47',
        'node_interrupts_total{cpu="0",devices="2-edge timer",info="IO-APIC",type="0"} 18',
        'node_interrupts_total{cpu="1",devices="",info="Broken value",type="BAD"} 1',
    ]
    included = scrape("interrupts", name_include="^NMI")
    assert included.lines == [
        'node_interrupts_total{cpu="0",devices="",info="Non-maskable interrupts",type="NMI"} 47',
        'node_interrupts_total{cpu="1",devices="",info="Non-maskable interrupts",type="NMI"} 0',
    ]


def test_interrupts_empty_or_truncated_file(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    assert parse_interrupts("") == {}
    write_tree(tmp_path, {"proc/interrupts": TABLE[:60]})
    assert scrape("interrupts").ok


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_interrupts_survives_any_text(text: str) -> None:
    parse_interrupts(text)
