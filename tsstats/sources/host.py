"""What a host reader gives, and the one interface its two implementations meet: ``procfs.ProcfsHostReader``
(Linux, the fast path) and ``psutil_host.PsutilHostReader`` (machines without procfs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CpuTimes:
    busy: float  # jiffies (procfs) or seconds (psutil): only ratios of differences are used
    total: float


@dataclass(frozen=True)
class FastReading:
    """Read every tick: the CPU time counters."""

    cpu: CpuTimes
    logical_cpus: int


@dataclass(frozen=True)
class SlowReading:
    """Read about once a second: levels that change slowly (the kernel updates loadavg every 5 s) and the
    network byte counters."""

    memory_used_pct: float
    load1: float
    tcp_established: float  # NaN where it cannot be read
    net_rx_bytes: int
    net_tx_bytes: int


def cpu_busy_pct(previous: CpuTimes, current: CpuTimes) -> float:
    """Share of CPU time spent busy between two readings of /proc/stat, in %; NaN without elapsed ticks."""
    total = current.total - previous.total
    if total <= 0:
        return float("nan")
    busy = min(max(current.busy - previous.busy, 0), total)
    return 100.0 * busy / total


class HostReader(Protocol):
    """Reads the host's counters: the CPU times every tick, the slow levels about once a second."""

    name: str  # the reader's method, for ``meta.sources.system``

    def read_fast(self) -> FastReading: ...

    def read_slow(self) -> SlowReading: ...

    def cpu_model(self) -> str: ...

    def close(self) -> None: ...
