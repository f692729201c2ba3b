"""The host's counters (CPU time, memory, load, TCP, network): what a host reader gives, the one interface its two
implementations meet, and both. Read on the sampler thread.

``ProcfsHostReader`` reads procfs (``proc_root`` is passed in): Linux, the fast path. ``PsutilHostReader`` reads
through psutil, for machines without procfs (macOS and Windows workstations):

- CPU time: all of ``cpu_times()`` but guest time (already in user time on Linux), busy being all but idle and
  iowait, in seconds (only ratios of differences are used).
- TCP connections: ``net_connections`` costs milliseconds and may need privileges (macOS): it is read with the
  slow readings, once a second, and reads NaN when refused.
- The load average: ``getloadavg`` (emulated on Windows, where it starts at 0).

Files of procfs and sysfs are kept open and re-read with ``pread`` from offset 0 (``OpenFiles``, also used by
the conditions' readers), which these filesystems answer with fresh contents: that saves an open and a close per
file per reading. ``machine_names``: the names and addresses this machine is known by, for the Host allowlist
of a service bound beyond loopback.
"""

from __future__ import annotations

import math
import os
import platform
import socket
from dataclasses import dataclass
from typing import Any, Protocol


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
    memory_used_bytes: float = math.nan  # total - available
    own_resident_bytes: float = math.nan  # this process' resident memory (its footprint), NaN where unknown


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


def parse_meminfo(text: str) -> tuple[float, float]:
    """Memory in use: (total - available) / total physical memory in %, and total - available in bytes."""
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
    used = float(total - available) * 1024  # meminfo counts kB
    return (100.0 * (total - available) / total if total > 0 else float("nan")), used


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


class ProcfsHostReader:
    """Reads the host's counters from procfs; every path is under ``proc_root``. The fast path on Linux; the
    assembly picks psutil's reader where there is no procfs.

    The files read every tick are opened once and re-read with ``pread`` from offset 0, which procfs
    answers with fresh contents; that saves an open and a close per file per tick.
    """

    name = "procfs"

    def __init__(self, proc_root: str = "/proc"):
        self.proc_root = proc_root
        self._files = OpenFiles(proc_root)
        self._read = self._files.read

    def close(self) -> None:
        self._files.close()

    def read_fast(self) -> FastReading:
        cpu, logical = parse_stat(self._read("stat"))
        return FastReading(cpu=cpu, logical_cpus=logical)

    def read_slow(self) -> SlowReading:
        rx, tx = parse_net_dev(self._read("net/dev"))
        used_pct, used_bytes = parse_meminfo(self._read("meminfo"))
        return SlowReading(memory_used_pct=used_pct, load1=parse_loadavg(self._read("loadavg")),
                           tcp_established=parse_snmp_curr_estab(self._read("net/snmp")), net_rx_bytes=rx,
                           net_tx_bytes=tx, memory_used_bytes=used_bytes, own_resident_bytes=self._own_resident())

    def _own_resident(self) -> float:
        """This process' resident memory from ``self/statm`` (pages); NaN where the root has none (a canned tree)."""
        try:
            return float(self._read("self/statm").split()[1]) * PAGE_BYTES
        except (OSError, IndexError, ValueError):
            return math.nan

    def cpu_model(self) -> str:
        try:
            with open(os.path.join(self.proc_root, "cpuinfo"), encoding="ascii", errors="replace") as handle:
                return parse_cpu_model(handle.read())
        except OSError:
            return ""


LOOPBACK_PREFIXES = ("lo", "Loopback")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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
        try:
            own = float(ps.Process().memory_info().rss)
        except Exception:  # psutil.Error where the process table cannot be read
            own = math.nan
        return SlowReading(memory_used_pct=100.0 * (memory.total - memory.available) / memory.total,
                           load1=float(ps.getloadavg()[0]), tcp_established=self._established(),
                           net_rx_bytes=rx, net_tx_bytes=tx, memory_used_bytes=float(memory.total - memory.available),
                           own_resident_bytes=own)

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


CHUNK_BYTES = 65536


class OpenFiles:
    """Files under ``root`` by relative path, opened on first read; one owner thread."""

    def __init__(self, root: str):
        self.root = root
        self._fds: dict[str, int] = {}

    def read(self, relative: str) -> str:
        fd = self._fds.get(relative)
        if fd is None:
            fd = self._fds[relative] = os.open(os.path.join(self.root, relative), os.O_RDONLY)
        chunks = []
        offset = 0
        while True:
            try:
                chunk = os.pread(fd, CHUNK_BYTES, offset)
            except OSError:  # a file that went away (an unplugged device): opened again next time
                os.close(self._fds.pop(relative))
                raise
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            if len(chunk) < CHUNK_BYTES:
                break
        return b"".join(chunks).decode("ascii", "replace")

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


def machine_names(psutil_module: Any = None) -> list[str]:
    """This machine's host name, its fully qualified name, and the address of each of its interfaces."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        psutil = psutil_module if psutil_module is not None else _import_psutil()
        for addresses in psutil.net_if_addrs().values():
            for address in addresses:
                if address.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(address.address.split("%")[0])  # an IPv6 link-local scope is no part of a Host
    except (ImportError, OSError):
        pass
    return sorted(name for name in names if name)
