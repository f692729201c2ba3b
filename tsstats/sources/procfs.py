"""CPU, memory, load, TCP and network counters from procfs (``proc_root`` is passed in)."""

from __future__ import annotations

import os

from tsstats.sources.files import OpenFiles
from tsstats.sources.host import CpuTimes, FastReading, SlowReading


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
        return SlowReading(memory_used_pct=parse_meminfo(self._read("meminfo")),
                           load1=parse_loadavg(self._read("loadavg")),
                           tcp_established=parse_snmp_curr_estab(self._read("net/snmp")), net_rx_bytes=rx,
                           net_tx_bytes=tx)

    def cpu_model(self) -> str:
        try:
            with open(os.path.join(self.proc_root, "cpuinfo"), encoding="ascii", errors="replace") as handle:
                return parse_cpu_model(handle.read())
        except OSError:
            return ""
