"""CPU, memory, load, TCP and network counters from procfs (``proc_root`` is passed in)."""

from __future__ import annotations

import os
from dataclasses import dataclass


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
    """Aggregate CPU times and the number of logical CPUs (online) from /proc/stat."""
    if not text.startswith("cpu "):
        raise ValueError("no aggregate cpu line at the start of /proc/stat")
    first = text[:text.index("\n")] if "\n" in text else text
    # user nice system idle iowait irq softirq steal (guest is already in user)
    fields = ([int(x) for x in first.split()[1:9]] + [0] * 8)[:8]
    idle = fields[3] + fields[4]
    total = sum(fields)
    logical = text.count("\ncpu")
    return CpuTimes(busy=total - idle, total=total), max(logical, 1)


def parse_meminfo(text: str) -> float:
    """(total - available) / total physical memory, in %."""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached"):
            values[key] = int(rest.split()[0])
            if key == "Cached" or "MemAvailable" in values and "MemTotal" in values:
                break
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
    """Reads the host's counters from procfs; every path is under ``proc_root``. The fast path on Linux;
    ``open_host_reader`` falls back to psutil where there is no procfs.

    The files read every tick are opened once and re-read with ``pread`` from offset 0, which procfs
    answers with fresh contents; that saves an open and a close per file per tick.
    """

    name = "procfs"

    def __init__(self, proc_root: str = "/proc"):
        self.proc_root = proc_root
        self._fds: dict[str, int] = {}

    def _read(self, relative: str) -> str:
        fd = self._fds.get(relative)
        if fd is None:
            fd = self._fds[relative] = os.open(os.path.join(self.proc_root, relative), os.O_RDONLY)
        chunks = []
        offset = 0
        while True:
            chunk = os.pread(fd, 65536, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            if len(chunk) < 65536:
                break
        return b"".join(chunks).decode("ascii", "replace")

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def read_fast(self) -> FastReading:
        cpu, logical = parse_stat(self._read("stat"))
        return FastReading(cpu=cpu, logical_cpus=logical)

    def read_slow(self) -> SlowReading:
        rx, tx = parse_net_dev(self._read("net/dev"))
        return SlowReading(memory_used_pct=parse_meminfo(self._read("meminfo")),
                           load1=parse_loadavg(self._read("loadavg")),
                           tcp_established=parse_snmp_curr_estab(self._read("net/snmp")), net_rx_bytes=rx,
                           net_tx_bytes=tx)

    def read(self) -> HostReading:
        fast, slow = self.read_fast(), self.read_slow()
        return HostReading(cpu=fast.cpu, logical_cpus=fast.logical_cpus, memory_used_pct=slow.memory_used_pct,
                           load1=slow.load1, tcp_established=slow.tcp_established, net_rx_bytes=slow.net_rx_bytes,
                           net_tx_bytes=slow.net_tx_bytes)

    def cpu_model(self) -> str:
        try:
            with open(os.path.join(self.proc_root, "cpuinfo"), encoding="ascii", errors="replace") as handle:
                return parse_cpu_model(handle.read())
        except OSError:
            return ""


def open_host_reader(proc_root: str = "/proc", psutil_module=None):
    """The procfs reader where ``proc_root`` has ``stat`` (Linux), else the psutil reader."""
    if os.path.exists(os.path.join(proc_root, "stat")):
        return HostReader(proc_root)
    from .psutil_host import PsutilHostReader

    return PsutilHostReader(psutil_module)
