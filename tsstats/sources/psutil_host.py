"""CPU, memory, load, TCP and network counters through psutil, for machines without procfs (macOS and Windows
workstations). It implements ``sources.host.HostReader`` as ``procfs.ProcfsHostReader`` does, which stays the fast
path on Linux.

- CPU time: all of ``cpu_times()`` but guest time (already in user time on Linux), busy being all but idle and
  iowait, in seconds (only ratios of differences are used).
- TCP connections: ``net_connections`` costs milliseconds and may need privileges (macOS): it is read with the
  slow readings, once a second, and reads NaN when refused.
- The load average: ``getloadavg`` (emulated on Windows, where it starts at 0).
"""

from __future__ import annotations

import math
import platform
from typing import Any

from tsstats.sources.host import CpuTimes, FastReading, SlowReading

LOOPBACK_PREFIXES = ("lo", "Loopback")


def _import_psutil() -> Any:
    import psutil

    return psutil


def cpu_times_of(times: Any) -> CpuTimes:
    """Busy and total CPU seconds from a ``psutil.cpu_times()`` tuple."""
    fields = times._asdict()
    total = sum(value for name, value in fields.items() if name not in ("guest", "guest_nice"))
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
    return CpuTimes(busy=total - idle, total=total)


class PsutilHostReader:
    name = "psutil"

    def __init__(self, psutil_module: Any = None):
        self._psutil = psutil_module if psutil_module is not None else _import_psutil()

    def read_fast(self) -> FastReading:
        ps = self._psutil
        return FastReading(cpu=cpu_times_of(ps.cpu_times()), logical_cpus=ps.cpu_count() or 1)

    def read_slow(self) -> SlowReading:
        ps = self._psutil
        memory = ps.virtual_memory()
        rx = tx = 0
        for nic, counters in ps.net_io_counters(pernic=True).items():
            if not nic.startswith(LOOPBACK_PREFIXES):
                rx += counters.bytes_recv
                tx += counters.bytes_sent
        return SlowReading(memory_used_pct=100.0 * (memory.total - memory.available) / memory.total,
                           load1=float(ps.getloadavg()[0]), tcp_established=self._established(),
                           net_rx_bytes=rx, net_tx_bytes=tx)

    def _established(self) -> float:
        ps = self._psutil
        try:
            connections = ps.net_connections(kind="tcp")
        except (ps.AccessDenied, OSError):
            return math.nan
        return float(sum(1 for connection in connections if connection.status == ps.CONN_ESTABLISHED))

    def cpu_model(self) -> str:
        return platform.processor() or ""

    def close(self) -> None:
        pass
