"""processes collector: /proc/<pid>/stat, task/<tid>/stat and the kernel's limits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nodeagent.metrics.processes import parse_pid_stat
from tests.metrics.conftest import Scraped, write_tree


def stat(pid: int, comm: str, state: str, threads: int) -> str:
    return f"{pid} ({comm}) {state} 0 1 1 0 -1 4194560 0 0 0 0 36 98 0 0 20 0 {threads} 0 29 109604864 2507\n"


def test_pid_stat_with_odd_command_names() -> None:
    assert parse_pid_stat(stat(1, "systemd", "S", 1)) == ("S", 1)
    assert parse_pid_stat(stat(7, "a) (b c", "R", 4)) == ("R", 4)
    assert parse_pid_stat("1 (x) S 0 1") is None
    assert parse_pid_stat("no parenthesis") is None
    assert parse_pid_stat(stat(1, "x", "S", 1).replace(" 1 0 29", " one 0 29")) is None


def test_processes_counts_states_threads_and_limits(tmp_path: Path, scrape: Callable[..., Scraped]) -> None:
    write_tree(
        tmp_path,
        {
            "proc/1/stat": stat(1, "init", "S", 1),
            "proc/1/task/1/stat": stat(1, "init", "S", 1),
            "proc/20/stat": stat(20, "worker", "R", 2),
            "proc/20/task/20/stat": stat(20, "worker", "R", 2),
            "proc/20/task/21/stat": stat(21, "worker", "D", 2),
            "proc/30/stat": "30 (truncated",
            "proc/self/stat": stat(1, "init", "S", 1),
            "proc/sys/kernel/threads-max": "7801\n",
            "proc/sys/kernel/pid_max": "123\n",
        },
    )
    (tmp_path / "proc" / "40").mkdir()  # exited between listing and reading: left out
    result = scrape("processes")
    assert result.ok
    assert result.lines == [
        "node_processes_max_processes 123",
        "node_processes_max_threads 7801",
        "node_processes_pids 2",
        'node_processes_state{state="R"} 1',
        'node_processes_state{state="S"} 1',
        "node_processes_threads 3",
        'node_processes_threads_state{thread_state="D"} 1',
        'node_processes_threads_state{thread_state="R"} 1',
        'node_processes_threads_state{thread_state="S"} 1',
    ]


def test_processes_without_limits_fails_the_collector_only(
    tmp_path: Path, scrape: Callable[..., Scraped]
) -> None:
    write_tree(tmp_path, {"proc/1/stat": stat(1, "init", "S", 1)})
    assert not scrape("processes").ok


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_parse_pid_stat_survives_any_text(text: str) -> None:
    parse_pid_stat(text)
