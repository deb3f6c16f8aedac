"""timex: kernel clock discipline state from adjtimex(2), read-only (modes = 0).

Units as node_exporter: offset and PPS jitter are microseconds, or nanoseconds when STA_NANO is set;
frequencies are scaled ppm (ppm * 2^16).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client.metrics_core import Metric

from nodeagent.metrics._emit import counter, gauge, single
from nodeagent.metrics.registry import Collector, NoDataError, Paths, register

TIME_ERROR = 5  # adjtimex return value: clock not synchronized
STA_NANO = 0x2000  # status bit: offset/jitter are in nanoseconds
_PPM16 = 1_000_000.0 * 65536.0  # frequency fields: ppm with a 16-bit fractional part


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Timex(ctypes.Structure):
    """struct timex of <sys/timex.h> (glibc, LP64 and ILP32 alike: every field is int or long)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 32),  # the kernel's 11 reserved ints, with room to spare
    ]


# metric name, help, type (gauge/counter), value from (timex, state)
def timex_metrics(tx: Any, state: int) -> list[tuple[str, str, str, float]]:
    """The node_timex_* values of one adjtimex(2) result; ``tx`` has struct timex's field names."""
    divisor = 1e9 if tx.status & STA_NANO else 1e6
    return [
        (
            "node_timex_sync_status",
            "1 if the kernel clock is synchronized to a reliable server, else 0.",
            "gauge",
            0.0 if state == TIME_ERROR else 1.0,
        ),
        (
            "node_timex_offset_seconds",
            "Offset between the local clock and the reference clock.",
            "gauge",
            tx.offset / divisor,
        ),
        (
            "node_timex_frequency_adjustment_ratio",
            "Frequency adjustment of the local clock, as a ratio.",
            "gauge",
            1 + tx.freq / _PPM16,
        ),
        (
            "node_timex_maxerror_seconds",
            "Maximum error of the clock, in seconds.",
            "gauge",
            tx.maxerror / 1e6,
        ),
        (
            "node_timex_estimated_error_seconds",
            "Estimated error of the clock, in seconds.",
            "gauge",
            tx.esterror / 1e6,
        ),
        ("node_timex_status", "Clock status bits (STA_*).", "gauge", float(tx.status)),
        (
            "node_timex_loop_time_constant",
            "Time constant of the phase-locked loop.",
            "gauge",
            float(tx.constant),
        ),
        ("node_timex_tick_seconds", "Time between clock ticks, in seconds.", "gauge", tx.tick / 1e6),
        (
            "node_timex_pps_frequency_hertz",
            "Frequency of the pulse-per-second signal.",
            "gauge",
            tx.ppsfreq / _PPM16,
        ),
        (
            "node_timex_pps_jitter_seconds",
            "Jitter of the pulse-per-second signal, in seconds.",
            "gauge",
            tx.jitter / divisor,
        ),
        (
            "node_timex_pps_shift_seconds",
            "Pulse-per-second calibration interval duration (log2 seconds).",
            "gauge",
            float(tx.shift),
        ),
        (
            "node_timex_pps_stability_hertz",
            "Pulse-per-second stability: average of recent frequency changes.",
            "gauge",
            tx.stabil / _PPM16,
        ),
        (
            "node_timex_pps_jitter_total",
            "Pulse-per-second jitter limit exceeded events.",
            "counter",
            float(tx.jitcnt),
        ),
        (
            "node_timex_pps_calibration_total",
            "Pulse-per-second calibration intervals.",
            "counter",
            float(tx.calcnt),
        ),
        ("node_timex_pps_error_total", "Pulse-per-second calibration errors.", "counter", float(tx.errcnt)),
        (
            "node_timex_pps_stability_exceeded_total",
            "Pulse-per-second stability limit exceeded events.",
            "counter",
            float(tx.stbcnt),
        ),
        (
            "node_timex_tai_offset_seconds",
            "Offset of International Atomic Time (TAI) from UTC, in seconds.",
            "gauge",
            float(tx.tai),
        ),
    ]


def _load_adjtimex() -> Any:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    function = libc.adjtimex
    function.argtypes = [ctypes.POINTER(Timex)]
    function.restype = ctypes.c_int
    return function


@register
class TimexCollector(Collector):
    name = "timex"

    def __init__(self, paths: Paths, options: dict[str, Any]) -> None:
        super().__init__(paths, options)
        self._adjtimex: Any = None

    def read(self) -> tuple[Timex, int]:
        if self._adjtimex is None:
            try:
                self._adjtimex = _load_adjtimex()
            except (OSError, AttributeError) as exc:
                raise NoDataError(f"adjtimex is not available: {exc}") from None
        tx = Timex()  # modes = 0: read only
        state = self._adjtimex(ctypes.byref(tx))
        if state < 0:
            code = ctypes.get_errno()
            if code in (errno.EPERM, errno.EACCES):
                raise NoDataError("adjtimex is not permitted")
            raise OSError(code, f"adjtimex failed: {os.strerror(code)}")
        return tx, state

    def collect(self) -> Iterable[Metric]:
        tx, state = self.read()
        for metric_name, help_text, kind, value in timex_metrics(tx, state):
            yield single((counter if kind == "counter" else gauge)(metric_name, help_text), value)
