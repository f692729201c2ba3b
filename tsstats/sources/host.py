"""CPU, memory, load, TCP and network counters from procfs (``proc_root`` is passed in)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuTimes:
    busy: int
    total: int


@dataclass(frozen=True)
class HostReading:
    cpu: CpuTimes
    logical_cpus: int
    memory_used_pct: float
    load1: float
    tcp_established: int
    net_rx_bytes: int
    net_tx_bytes: int


def cpu_busy_pct(previous: CpuTimes, current: CpuTimes) -> float:
    """Share of CPU time spent busy between two readings of /proc/stat, in %; NaN without elapsed ticks."""
    total = current.total - previous.total
    if total <= 0:
        return float("nan")
    busy = min(max(current.busy - previous.busy, 0), total)
    return 100.0 * busy / total


def parse_stat(text: str) -> tuple[CpuTimes, int]:
    """Aggregate CPU times and the number of logical CPUs from /proc/stat."""
    times = None
    logical = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            fields = [int(x) for x in line.split()[1:]]
            # user nice system idle iowait irq softirq steal (guest is already in user)
            fields = (fields + [0] * 8)[:8]
            idle = fields[3] + fields[4]
            total = sum(fields)
            times = CpuTimes(busy=total - idle, total=total)
        elif line.startswith("cpu") and line[3:4].isdigit():
            logical += 1
    if times is None:
        raise ValueError("no aggregate cpu line in /proc/stat")
    return times, max(logical, 1)


def parse_meminfo(text: str) -> float:
    """(total - available) / total physical memory, in %."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached"):
            values[key] = int(rest.split()[0])
    total = values["MemTotal"]
    available = values.get("MemAvailable")
    if available is None:  # kernels before 3.14
        available = values.get("MemFree", 0) + values.get("Buffers", 0) + values.get("Cached", 0)
    return 100.0 * (total - available) / total if total > 0 else float("nan")


def parse_loadavg(text: str) -> float:
    return float(text.split()[0])


def parse_snmp_curr_estab(text: str) -> int:
    """CurrEstab of the Tcp MIB: connections now ESTABLISHED, IPv4 and IPv6 together on Linux."""
    header = None
    for line in text.splitlines():
        if line.startswith("Tcp:"):
            fields = line.split()[1:]
            if header is None:
                header = fields
            else:
                return int(fields[header.index("CurrEstab")])
    raise ValueError("no Tcp lines in /proc/net/snmp")


def parse_net_dev(text: str) -> tuple[int, int]:
    """Received and transmitted bytes over all interfaces but loopback."""
    rx = tx = 0
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        if not rest or name.strip() == "lo":
            continue
        fields = rest.split()
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx


def parse_cpu_model(text: str) -> str:
    """The CPU's model name from /proc/cpuinfo, or '' when it says none."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "cpu model"):
            return value.strip()
    return ""


class HostReader:
    """Reads the host's counters from procfs; every path is under ``proc_root``."""

    def __init__(self, proc_root: str = "/proc"):
        self.proc_root = proc_root

    def _read(self, relative: str) -> str:
        with open(os.path.join(self.proc_root, relative), encoding="ascii", errors="replace") as handle:
            return handle.read()

    def read(self) -> HostReading:
        cpu, logical = parse_stat(self._read("stat"))
        rx, tx = parse_net_dev(self._read("net/dev"))
        return HostReading(
            cpu=cpu,
            logical_cpus=logical,
            memory_used_pct=parse_meminfo(self._read("meminfo")),
            load1=parse_loadavg(self._read("loadavg")),
            tcp_established=parse_snmp_curr_estab(self._read("net/snmp")),
            net_rx_bytes=rx,
            net_tx_bytes=tx,
        )

    def cpu_model(self) -> str:
        try:
            return parse_cpu_model(self._read("cpuinfo"))
        except OSError:
            return ""
