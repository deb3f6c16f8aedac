"""cpu_vulnerabilities collector: /sys/devices/system/cpu/vulnerabilities."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.cpu_vulnerabilities import parse_vulnerability
from tests.metrics.conftest import Scraped, write_tree


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Not affected\n", ("not affected", "")),
        ("Vulnerable\n", ("vulnerable", "")),
        (
            "Vulnerable: Clear CPU buffers attempted, no microcode\n",
            ("vulnerable", "Clear CPU buffers attempted, no microcode"),
        ),
        ("Mitigation: PTI\n", ("mitigation", "PTI")),
        ("Unknown: No mitigations\n", ("unknown", "No mitigations")),
        ("Processor vulnerable\n", ("unknown", "Processor vulnerable")),
        ("", ("unknown", "")),
    ],
)
def test_vulnerability_states(text: str, expected: tuple[str, str]) -> None:
    assert parse_vulnerability(text) == expected


def test_cpu_vulnerabilities_scrape(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    base = "sys/devices/system/cpu/vulnerabilities"
    write_tree(tmp_path, {f"{base}/meltdown": "Mitigation: PTI\n", f"{base}/l1tf": "Not affected\n"})
    result = scrape("cpu_vulnerabilities")
    assert result.ok
    assert result.lines == [
        'node_cpu_vulnerabilities_info{codename="l1tf",mitigation="",state="not affected"} 1',
        'node_cpu_vulnerabilities_info{codename="meltdown",mitigation="PTI",state="mitigation"} 1',
    ]


def test_cpu_vulnerabilities_without_the_directory_is_empty(scrape: Callable[..., Scraped]) -> None:
    result = scrape("cpu_vulnerabilities")
    assert result.ok and result.lines == []


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_vulnerability_survives_any_text(text: str) -> None:
    parse_vulnerability(text)
