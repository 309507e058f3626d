"""Process measurements from /proc: resident memory and CPU time, for this process or another."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


def cpu_seconds(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the whole line (11 and 12 after the command name)
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(slots=True)
class CpuMeter:
    """CPU seconds a process used between `start()` and `stop()`, and the wall time."""

    pid: int | str = "self"
    _cpu: float = 0.0
    _wall: float = 0.0

    def start(self) -> None:
        self._cpu = cpu_seconds(self.pid)
        self._wall = time.perf_counter()

    def stop(self) -> tuple[float, float]:
        return cpu_seconds(self.pid) - self._cpu, time.perf_counter() - self._wall


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def latency_summary(samples_us: list[float]) -> dict[str, float]:
    """p50 and p99 of one-at-a-time round trips in µs (sorts `samples_us` in place)."""
    samples_us.sort()
    return {
        "p50_us": round(statistics.median(samples_us), 1),
        "p99_us": round(samples_us[int(len(samples_us) * 0.99) - 1], 1),
    }
