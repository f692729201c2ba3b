"""The conditions a run had: CPU time by kind, pressure stalls, swap, disks, the database's filesystem and
the CPU's temperatures, clocks and throttling, read once a second by the sampler (sampler thread). One
interface, two readers: ``ProcfsConditions`` (Linux: procfs and sysfs) and ``PsutilConditions`` (machines
without procfs); before them, the pure parsers of the files they read (CPU time by kind, pressure stall
information, swap, virtual memory counters, block devices), each taking a file's text and returning a typed
record without touching the filesystem.

The CPU's sensors (``CpuSensors``) from sysfs (``sys_root`` is passed in):

- Temperatures: hwmon chips of the CPU (``coretemp``, ``k10temp``, ``zenpower``, ``cpu_thermal``), as
  ``psutil.sensors_temperatures`` reads them: the package is a ``Package id N``, ``Tctl`` or ``Tdie`` sensor
  (else the chip's hottest), the hottest core a ``Core N`` or ``Tccd N`` one; without hwmon, the
  ``x86_pkg_temp`` or ``cpu*-thermal`` thermal zone gives the package.
- Clocks: each CPU's ``cpufreq/scaling_cur_freq`` against its ``cpuinfo_max_freq`` (kHz).
- Throttling: ``thermal_throttle/core_throttle_count`` summed over CPUs, plus each package's
  ``package_throttle_count`` once (every CPU of a package shows the same one).

Where is found once, when the reader is built; a file that later fails reads NaN for its figure.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Protocol

from tsstats.sources.host import CpuTimes, OpenFiles, cpu_busy_pct

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


CPU_CHIPS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "soc_thermal")
PACKAGE_LABELS = ("Package id", "Tctl", "Tdie")
CORE_LABELS = ("Core ", "Tccd")
CPU_ZONES = ("x86_pkg_temp", "cpu-thermal", "cpu_thermal", "soc-thermal", "soc_thermal")


@dataclass(frozen=True)
class CpuSensorReading:
    package_c: float  # NaN where unknown
    hottest_core_c: float
    freq_mean_mhz: float
    freq_min_mhz: float
    freq_max_mhz: float  # the highest of the CPUs' maximum clocks
    throttle_count: float  # core + package thermal throttle events since boot


@dataclass(frozen=True)
class SensorFiles:
    """What was found under ``sys_root``, relative to it."""

    package: tuple[str, ...]  # temperature inputs (millidegrees)
    cores: tuple[str, ...]
    cur_freq: tuple[str, ...]
    max_freq_khz: float  # NaN where not known
    throttle: tuple[str, ...]  # counters to sum

    @property
    def sources(self) -> dict[str, str]:
        """Each figure's source, or '' where this machine gives none."""
        return {"cpuTemperature": "hwmon/thermal" if self.package else "",
                "cpuFrequency": "cpufreq" if self.cur_freq else "",
                "cpuThrottle": "thermal_throttle" if self.throttle else ""}


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _text(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def find_temperatures(sys_root: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(package inputs, core inputs) relative to ``sys_root``."""
    package: list[str] = []
    cores: list[str] = []
    hwmon = os.path.join("class", "hwmon")
    for chip in _listdir(os.path.join(sys_root, hwmon)):
        chip_dir = os.path.join(hwmon, chip)
        if _text(os.path.join(sys_root, chip_dir, "name")) not in CPU_CHIPS:
            continue
        inputs = [name for name in _listdir(os.path.join(sys_root, chip_dir))
                  if name.startswith("temp") and name.endswith("_input")]
        chip_package: list[str] = []
        for name in inputs:
            label = _text(os.path.join(sys_root, chip_dir, name.replace("_input", "_label")))
            relative = os.path.join(chip_dir, name)
            if label.startswith(PACKAGE_LABELS):
                chip_package.append(relative)
            elif label.startswith(CORE_LABELS):
                cores.append(relative)
        package += chip_package or [os.path.join(chip_dir, name) for name in inputs]
    if not package:
        thermal = os.path.join("class", "thermal")
        for zone in _listdir(os.path.join(sys_root, thermal)):
            if zone.startswith("thermal_zone") and \
                    _text(os.path.join(sys_root, thermal, zone, "type")) in CPU_ZONES:
                package.append(os.path.join(thermal, zone, "temp"))
    return tuple(package), tuple(cores)


def find_sensor_files(sys_root: str) -> SensorFiles:
    package, cores = find_temperatures(sys_root)
    cpu_dir = os.path.join("devices", "system", "cpu")
    cpus = [name for name in _listdir(os.path.join(sys_root, cpu_dir)) if name[3:].isdigit() and
            name.startswith("cpu")]
    cur_freq: list[str] = []
    max_khz = math.nan
    throttle: list[str] = []
    packages_seen: set[str] = set()
    for cpu in cpus:
        freq = os.path.join(cpu_dir, cpu, "cpufreq")
        if os.path.exists(os.path.join(sys_root, freq, "scaling_cur_freq")):
            cur_freq.append(os.path.join(freq, "scaling_cur_freq"))
            top = _text(os.path.join(sys_root, freq, "cpuinfo_max_freq"))
            if top.isdigit():
                max_khz = max(float(top), max_khz) if math.isfinite(max_khz) else float(top)
        counters = os.path.join(cpu_dir, cpu, "thermal_throttle")
        if os.path.exists(os.path.join(sys_root, counters, "core_throttle_count")):
            throttle.append(os.path.join(counters, "core_throttle_count"))
            package_id = _text(os.path.join(sys_root, cpu_dir, cpu, "topology", "physical_package_id"))
            if package_id not in packages_seen and \
                    os.path.exists(os.path.join(sys_root, counters, "package_throttle_count")):
                packages_seen.add(package_id)
                throttle.append(os.path.join(counters, "package_throttle_count"))
    return SensorFiles(package=package, cores=cores, cur_freq=tuple(cur_freq), max_freq_khz=max_khz,
                       throttle=tuple(throttle))


class CpuSensors:
    """Reads the files ``find_sensor_files`` found, once a second (the sampler's slow step)."""

    def __init__(self, sys_root: str = "/sys", found: SensorFiles | None = None):
        self.found = found if found is not None else find_sensor_files(sys_root)
        self._files = OpenFiles(sys_root)

    def _values(self, paths: tuple[str, ...], scale: float) -> list[float]:
        values = []
        for path in paths:
            try:
                values.append(float(self._files.read(path).strip()) * scale)
            except (OSError, ValueError):
                continue
        return values

    def read(self) -> CpuSensorReading:
        found = self.found
        package = self._values(found.package, 0.001)
        cores = self._values(found.cores, 0.001)
        freqs = self._values(found.cur_freq, 0.001)
        throttles = self._values(found.throttle, 1.0)
        nan = math.nan
        return CpuSensorReading(
            package_c=max(package) if package else nan, hottest_core_c=max(cores) if cores else nan,
            freq_mean_mhz=sum(freqs) / len(freqs) if freqs else nan, freq_min_mhz=min(freqs) if freqs else nan,
            freq_max_mhz=found.max_freq_khz / 1000.0,
            throttle_count=sum(throttles) if len(throttles) == len(found.throttle) and throttles else nan)

    def close(self) -> None:
        self._files.close()


NAN = math.nan
PRESSURES = ("cpu", "memory", "io")
NO_SENSORS = CpuSensorReading(NAN, NAN, NAN, NAN, NAN, NAN)


@dataclass(frozen=True)
class Conditions:
    """One reading; counters are cumulative (rates are the sampler's), NaN or None where unavailable."""

    kinds: CpuKinds | None
    pressure_pct: dict[str, float]  # "some avg10" by resource: cpu, memory, io
    swap_used_bytes: float
    swapped_in_bytes: float  # since boot
    swapped_out_bytes: float
    disks: Disks | None
    filesystem_used_pct: float  # of the filesystem holding the database
    sensors: CpuSensorReading
    cores: tuple[CpuKinds, ...] = ()  # each online core's, in order (empty where unknown)


class ConditionsReader(Protocol):
    name: str  # the reader's method, for meta.sources
    failures: dict[str, str]  # what failed since start, by kind of reading, with the first error

    def read(self) -> Conditions: ...

    def sources(self) -> dict[str, str]:
        """Each group of readings (cpuKinds, pressure, swap, disks, filesystem, cpuTemperature, cpuFrequency,
        cpuThrottle) with its source, or '' where this machine gives none."""
        ...

    def close(self) -> None: ...


def filesystem_used_pct(path: str) -> float:
    """Used share of the filesystem holding ``path``, as ``df`` shows it (blocks reserved for root left out
    of the total); a path not created yet is measured at its nearest existing parent. NaN where it cannot be
    read."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    try:
        found = os.statvfs(path)
    except OSError:
        return NAN
    used = found.f_blocks - found.f_bfree
    usable = used + found.f_bavail
    return 100.0 * used / usable if usable > 0 else NAN


def whole_disks(sys_root: str) -> frozenset[str]:
    """Block devices backed by a device (``/sys/block/X/device``): disks, not partitions, loop devices,
    device-mapper or RAID volumes (which would count the same bytes twice) nor RAM disks."""
    block = os.path.join(sys_root, "block")
    try:
        names = os.listdir(block)
    except OSError:
        return frozenset()
    return frozenset(name for name in names if os.path.exists(os.path.join(block, name, "device")))


class ProcfsConditions:
    """Reads procfs under ``proc_root`` and sysfs under ``sys_root``; a file that fails makes its figures NaN
    for that reading, and ``failures`` names each kind that could be read at start and failed since (for the
    log, once)."""

    name = "procfs"

    def __init__(self, proc_root: str = "/proc", sys_root: str = "/sys", db_dir: str = ".",
                 sensors: CpuSensors | None = None):
        self._files = OpenFiles(proc_root)
        self.db_dir = db_dir
        self.seconds_per_tick = 1.0 / os.sysconf("SC_CLK_TCK")
        self.page_bytes = os.sysconf("SC_PAGE_SIZE")
        self.disks = whole_disks(sys_root)
        self.sensors = sensors if sensors is not None else CpuSensors(sys_root)
        self.failures: dict[str, str] = {}
        self._absent: frozenset[str] = frozenset()
        self._sources = self._probe()

    def _attempt(self, what: str, read: Any, default: Any) -> Any:
        try:
            return read()
        except (OSError, ValueError, IndexError) as error:
            if what not in self._absent:  # absent from the start is unavailable (meta.sources), not a failure
                self.failures.setdefault(what, f"{type(error).__name__}: {error}")
            return default

    def _probe(self) -> dict[str, str]:
        found = self.read()
        sensor_sources = self.sensors.found.sources
        self._absent = frozenset(self.failures)
        self.failures.clear()
        return {"cpuKinds": "procfs" if found.kinds is not None else "",
                "pressure": "procfs" if any(math.isfinite(v) for v in found.pressure_pct.values()) else "",
                "swap": "procfs" if math.isfinite(found.swap_used_bytes) else "",
                "disks": "procfs" if found.disks is not None and self.disks else "",
                "filesystem": "statvfs" if math.isfinite(found.filesystem_used_pct) else "",
                **sensor_sources}

    def sources(self) -> dict[str, str]:
        return dict(self._sources)

    def read(self) -> Conditions:
        files = self._files
        stat = self._attempt("cpu kinds", lambda: files.read("stat"), "")
        kinds = self._attempt("cpu kinds", lambda: parse_cpu_kinds(stat.partition("\n")[0], self.seconds_per_tick),
                              None) if stat else None
        cores = tuple(parse_core_lines(stat, self.seconds_per_tick)) if stat else ()
        pressure = {resource: self._attempt(f"pressure {resource}", lambda r=resource: parse_pressure_some_avg10(
            files.read(f"pressure/{r}")), NAN) for resource in PRESSURES}
        swap = self._attempt("swap", lambda: parse_swap(files.read("meminfo")), None)
        swapped = self._attempt("vmstat", lambda: parse_vmstat_swaps(files.read("vmstat")), None)
        disks = self._attempt("diskstats", lambda: parse_diskstats(files.read("diskstats"), self.disks), None) \
            if self.disks else None
        return Conditions(kinds=kinds, cores=cores, pressure_pct=pressure,
                          swap_used_bytes=float(swap.used_bytes) if swap is not None else NAN,
                          swapped_in_bytes=float(swapped[0] * self.page_bytes) if swapped is not None else NAN,
                          swapped_out_bytes=float(swapped[1] * self.page_bytes) if swapped is not None else NAN,
                          disks=disks, filesystem_used_pct=filesystem_used_pct(self.db_dir),
                          sensors=self._attempt("cpu sensors", self.sensors.read, NO_SENSORS))

    def close(self) -> None:
        self._files.close()
        self.sensors.close()


def _psutil_sensors(ps: Any) -> CpuSensorReading:
    package = cores = NAN
    read_temperatures = getattr(ps, "sensors_temperatures", None)
    if read_temperatures is not None:
        for chip, entries in (read_temperatures() or {}).items():
            if chip not in ("coretemp", "k10temp", "zenpower", "cpu_thermal"):
                continue
            for entry in entries:
                if entry.label.startswith(("Package id", "Tctl", "Tdie")) or not entry.label:
                    package = max(entry.current, package) if math.isfinite(package) else entry.current
                elif entry.label.startswith(("Core ", "Tccd")):
                    cores = max(entry.current, cores) if math.isfinite(cores) else entry.current
    freqs = ps.cpu_freq(percpu=True) if getattr(ps, "cpu_freq", None) is not None else []
    current = [f.current for f in freqs or [] if f.current]
    top = max((f.max for f in freqs or [] if f.max), default=NAN)
    return CpuSensorReading(package_c=package, hottest_core_c=cores,
                            freq_mean_mhz=sum(current) / len(current) if current else NAN,
                            freq_min_mhz=min(current) if current else NAN, freq_max_mhz=top, throttle_count=NAN)


def kinds_of(times: Any) -> CpuKinds:
    """CPU time by kind from a ``psutil.cpu_times()`` tuple (seconds)."""
    fields = times._asdict()
    return CpuKinds(user=fields.get("user", 0.0) + fields.get("nice", 0.0),
                    system=fields.get("system", 0.0) + fields.get("irq", 0.0) + fields.get("softirq", 0.0),
                    iowait=fields.get("iowait", 0.0), steal=fields.get("steal", 0.0),
                    total=sum(v for k, v in fields.items() if k not in ("guest", "guest_nice")),
                    idle=fields.get("idle", 0.0))


class PsutilConditions:
    """The same readings through psutil where there is no procfs: no pressure stall information and no
    throttle counters there (``sources`` says so)."""

    name = "psutil"

    def __init__(self, psutil_module: Any = None, db_dir: str = "."):
        if psutil_module is None:
            import psutil

            psutil_module = psutil
        self._psutil = psutil_module
        self.db_dir = db_dir
        self.failures: dict[str, str] = {}
        first = self.read()
        self._sources = {"cpuKinds": "psutil", "pressure": "",
                         "swap": "psutil" if math.isfinite(first.swap_used_bytes) else "",
                         "disks": "psutil" if first.disks is not None else "",
                         "filesystem": "statvfs" if math.isfinite(first.filesystem_used_pct) else "",
                         "cpuTemperature": "psutil" if math.isfinite(first.sensors.package_c) else "",
                         "cpuFrequency": "psutil" if math.isfinite(first.sensors.freq_mean_mhz) else "",
                         "cpuThrottle": ""}

    def sources(self) -> dict[str, str]:
        return dict(self._sources)

    def read(self) -> Conditions:
        ps = self._psutil
        kinds = kinds_of(ps.cpu_times())
        try:
            cores = tuple(kinds_of(core) for core in ps.cpu_times(percpu=True))
        except TypeError:  # a stand-in without percpu
            cores = ()
        try:
            swap = ps.swap_memory()
            used, sin, sout = float(swap.used), float(swap.sin), float(swap.sout)
        except (OSError, RuntimeError):
            used = sin = sout = NAN
        try:
            io = ps.disk_io_counters(perdisk=False)
        except (OSError, RuntimeError):
            io = None
        disks = Disks(read_bytes=io.read_bytes, write_bytes=io.write_bytes, reads=io.read_count,
                      writes=io.write_count) if io is not None else None
        try:
            sensors = _psutil_sensors(ps)
        except (OSError, RuntimeError, AttributeError):
            sensors = NO_SENSORS
        return Conditions(kinds=kinds, cores=cores, pressure_pct=dict.fromkeys(PRESSURES, NAN), swap_used_bytes=used,
                          swapped_in_bytes=sin, swapped_out_bytes=sout, disks=disks,
                          filesystem_used_pct=filesystem_used_pct(self.db_dir), sensors=sensors)

    def close(self) -> None:
        pass
