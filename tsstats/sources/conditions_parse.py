"""Pure parsers of the files that tell a run's conditions: CPU time by kind, pressure stall information,
swap, virtual memory counters and block devices. Each takes a file's text and returns a typed record; none
touches the filesystem."""

from __future__ import annotations

from dataclasses import dataclass

from tsstats.sources.host import CpuTimes, cpu_busy_pct

SECTOR_BYTES = 512  # /proc/diskstats counts 512-byte sectors whatever the device's own sector size


@dataclass(frozen=True)
class CpuKinds:
    """Cumulative CPU time by kind over all CPUs, in seconds (the readers convert /proc/stat's ticks)."""

    user: float  # user + nice (guest time is already inside user)
    system: float  # system + irq + softirq
    iowait: float
    steal: float  # time the hypervisor gave another guest while this one had work
    total: float
    idle: float = 0.0

    @property
    def times(self) -> CpuTimes:
        """Busy (neither idle nor waiting for I/O) and total time, as ``cpu_busy_pct`` takes them."""
        return CpuTimes(busy=self.total - self.idle - self.iowait, total=self.total)


@dataclass(frozen=True)
class Disks:
    """Cumulative counters summed over whole physical disks."""

    read_bytes: int
    write_bytes: int
    reads: int  # completed read operations
    writes: int


@dataclass(frozen=True)
class Swap:
    used_bytes: int
    total_bytes: int


def parse_cpu_kinds(line: str, seconds_per_tick: float = 1.0) -> CpuKinds:
    """The aggregate ``cpu`` line of /proc/stat (or a ``cpuN`` line) by kind; its ticks are
    ``1 / sysconf(SC_CLK_TCK)`` s each."""
    values = ([int(x) for x in line.split()[1:9]] + [0] * 8)[:8]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    k = seconds_per_tick
    return CpuKinds(user=(user + nice) * k, system=(system + irq + softirq) * k, iowait=iowait * k,
                    steal=steal * k, total=sum(values) * k, idle=idle * k)


def parse_core_lines(text: str, seconds_per_tick: float = 1.0) -> list[CpuKinds]:
    """Each online core's ``cpuN`` line of /proc/stat, in order."""
    return [parse_cpu_kinds(line, seconds_per_tick) for line in text.splitlines()
            if line.startswith("cpu") and line[3:4].isdigit()]


def kind_shares(previous: CpuKinds, current: CpuKinds) -> dict[str, float]:
    """Each kind's share of the CPU time between two readings, in %; NaN without elapsed time. A counter
    that went back (a CPU brought back online) gives 0 for that kind, never a negative share."""
    total = current.total - previous.total
    if total <= 0:
        return {kind: float("nan") for kind in ("user", "system", "iowait", "steal")}
    return {kind: 100.0 * min(max(getattr(current, kind) - getattr(previous, kind), 0.0), total) / total
            for kind in ("user", "system", "iowait", "steal")}


def busy_share(previous: CpuKinds, current: CpuKinds) -> float:
    """Share of one CPU's time neither idle nor waiting for I/O between two readings, in % (0 without elapsed
    time): ``host.cpu_busy_pct`` over the core's counters."""
    share = cpu_busy_pct(previous.times, current.times)
    return share if share == share else 0.0


def parse_pressure_some_avg10(text: str) -> float:
    """The ``some avg10`` figure of a /proc/pressure file: the share of the last 10 s in which at least one
    task waited for the resource, in %."""
    for line in text.splitlines():
        if line.startswith("some "):
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                if key == "avg10":
                    return float(value)
    raise ValueError("no 'some avg10=' in the pressure file")


def parse_swap(meminfo: str) -> Swap:
    """Swap used (total - free) and total from /proc/meminfo, in bytes."""
    values: dict[str, int] = {}
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        if key in ("SwapTotal", "SwapFree"):
            values[key] = int(rest.split()[0]) * 1024
    if "SwapTotal" not in values or "SwapFree" not in values:
        raise ValueError("no SwapTotal/SwapFree in /proc/meminfo")
    return Swap(used_bytes=max(values["SwapTotal"] - values["SwapFree"], 0), total_bytes=values["SwapTotal"])


def parse_vmstat_swaps(text: str) -> tuple[int, int]:
    """Pages swapped in and out since boot (``pswpin``, ``pswpout`` of /proc/vmstat)."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key in ("pswpin", "pswpout"):
            found[key] = int(value)
            if len(found) == 2:
                return found["pswpin"], found["pswpout"]
    raise ValueError("no pswpin/pswpout in /proc/vmstat")


def parse_diskstats(text: str, disks: frozenset[str]) -> Disks:
    """Bytes and operations read and written, summed over the named whole disks (partitions, which
    /proc/diskstats lists beside their disk, would count the same bytes twice)."""
    read_bytes = write_bytes = reads = writes = 0
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[2] not in disks:
            continue
        reads += int(fields[3])
        read_bytes += int(fields[5]) * SECTOR_BYTES
        writes += int(fields[7])
        write_bytes += int(fields[9]) * SECTOR_BYTES
    return Disks(read_bytes=read_bytes, write_bytes=write_bytes, reads=reads, writes=writes)


def counter_rate(previous: float, current: float, elapsed_s: float) -> float:
    """Per second between two readings of a counter; NaN when it went back (a device reset: a gap, never a
    negative rate) or no time passed."""
    if elapsed_s <= 0 or current < previous:
        return float("nan")
    return (current - previous) / elapsed_s
