"""processes: process and thread counts by state, PIDs in use, and the kernel's limits, from
<procfs>/<pid>/stat, <procfs>/<pid>/task/<tid>/stat, <procfs>/sys/kernel/{threads-max,pid_max}.

A process or thread that exits while it is being read is left out, as upstream.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import add_sample, gauge, single
from nodeagent.metrics.host.files import read_text, read_uint
from nodeagent.metrics.host.gonum import parse_int
from nodeagent.metrics.host.skips import Skip
from nodeagent.metrics.registry import Collector, register

# Fields after "(comm)" in <pid>/stat: state is the first, num_threads the 18th (stat field 20).
_NUM_THREADS = 17


def parse_pid_stat(text: str) -> tuple[str, int] | None:
    """``1 (systemd) S 0 1 ...`` -> (state, num_threads); None when malformed. The command name may
    hold spaces and parentheses: the fields start after the last ')'."""
    open_at, close_at = text.find("("), text.rfind(")")
    if open_at < 0 or close_at < open_at:
        return None
    fields = text[close_at + 1 :].split()
    if len(fields) <= _NUM_THREADS:
        return None
    try:
        return fields[0], parse_int(fields[_NUM_THREADS])
    except ValueError:
        return None


def numeric_entries(directory: str) -> list[str]:
    """Names of a /proc-like directory that are PIDs (procfs's AllProcs)."""
    names = []
    for name in os.listdir(directory):
        try:
            parse_int(name)
        except ValueError:
            continue
        names.append(name)
    return names


_GONE = (FileNotFoundError, ProcessLookupError)  # the process exited while being read


def read_stat(path: str, skipped: list[Skip]) -> tuple[str, int] | None:
    """(state, num_threads) of a process or thread; None when it is gone or its stat is malformed
    (reported in ``skipped``)."""
    try:
        text = read_text(path)
    except _GONE:
        return None
    parsed = parse_pid_stat(text)
    if parsed is None:
        skipped.append(Skip("processes: malformed stat", text))
    return parsed


@register
class ProcessesCollector(Collector):
    name = "processes"
    default_enabled = False

    def collect(self) -> Iterable[Metric]:
        process_states: Counter[str] = Counter()
        thread_states: Counter[str] = Counter()
        threads = 0
        skipped: list[Skip] = []
        for pid in numeric_entries(self.paths.proc()):
            parsed = read_stat(self.paths.proc(pid, "stat"), skipped)
            if parsed is None:
                continue
            state, num_threads = parsed
            process_states[state] += 1
            threads += num_threads
            self._count_thread_states(pid, state, thread_states, skipped)
        self.report(skipped)
        families = [
            single(gauge("node_processes_threads", "Threads allocated in the system."), threads),
            single(
                gauge("node_processes_max_threads", "Limit of threads in the system (kernel.threads-max)."),
                read_uint(self.paths.proc("sys", "kernel", "threads-max")),
            ),
        ]
        by_state = gauge("node_processes_state", "Processes in each state.")
        for state, count in process_states.items():
            add_sample(by_state, {"state": state}, count)
        families.append(by_state)
        by_thread_state = gauge("node_processes_threads_state", "Threads in each state.")
        for state, count in thread_states.items():
            add_sample(by_thread_state, {"thread_state": state}, count)
        families.append(by_thread_state)
        pid_max = read_uint(self.paths.proc("sys", "kernel", "pid_max"))
        families.append(single(gauge("node_processes_pids", "PIDs in use."), sum(process_states.values())))
        families.append(
            single(gauge("node_processes_max_processes", "Limit of PIDs (kernel.pid_max)."), pid_max)
        )
        return families

    def _count_thread_states(self, pid: str, state: str, states: Counter[str], skipped: list[Skip]) -> None:
        task_dir = self.paths.proc(pid, "task")
        try:
            tids = numeric_entries(task_dir)
        except (*_GONE, NotADirectoryError):
            return
        for tid in tids:
            if tid == pid:  # the main thread: the process's own state
                states[state] += 1
                continue
            parsed = read_stat(f"{task_dir}/{tid}/stat", skipped)
            if parsed is not None:
                states[parsed[0]] += 1
