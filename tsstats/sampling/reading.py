"""One tick's readings: the host, the GPUs, power and latency turned into a sample row by field name.

CPU, GPU and power are read every tick; memory, the load average (which the kernel updates every 5 s), the
TCP count, the network counters and the conditions (``sources.conditions``) once a second, carried to the
ticks between (repeated values cost next to nothing in DuckDB's run-length encoding, NULLs would not), the
network as bytes per second over that second; a second's conditions become sample-row fields as shares and
rates from two readings of the counters (``condition_values``). Intervals come from the monotonic clock,
timestamps from the wall clock, never decreasing (``clocks``: a step back moves what was stamped ahead). Also
the machine's state for a study to wait on (``TickReader.now``). Sampler thread; ``now`` from any thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tsstats.sampling.clocks import Clocks, ClockWatch, StepBack
from tsstats.sampling.meter import PowerMeter, PowerSample
from tsstats.sources.conditions import Conditions, ConditionsReader, busy_share, counter_rate, kind_shares
from tsstats.sources.gpu import GpuConditions, GpuReader, GpuReading
from tsstats.sources.host import CpuTimes, HostReader, SlowReading, cpu_busy_pct
from tsstats.sources.latency import LatencyMonitor

log = logging.getLogger("tsstats.sampler")
SLOW_READ_S = 1.0  # memory, load, TCP, network and the conditions: read once a second
NOW_WINDOW_S = 0.5  # the span of ``TickReader.now``: a study after a trial waits about this for a clean reading


@dataclass
class Sources:
    """Every reader of this machine, one bundle: opened by the assembly (``open_sources``) for the service and
    ``tsstats check``, and closed by it."""

    host: HostReader
    gpu: GpuReader
    meter: PowerMeter
    latency: LatencyMonitor
    dimms_known: bool = True  # the DIMM count came from the system or a setting, not the model's assumption
    conditions: ConditionsReader | None = None  # None: none of the conditions' readings (NaN)


@dataclass(frozen=True)
class CpuMark:
    """The CPU counters at a tick: the machine's, this service's own, and when."""

    mono: float
    wall_ms: float
    cpu: CpuTimes
    own_s: float
    logical_cpus: int


@dataclass(frozen=True)
class MachineNow:
    """Whether the machine is quiet and cool now: the CPU by whom over the last ``NOW_WINDOW_S`` or more of
    ticks, in % of every CPU's time, and the latest temperatures (NaN where unknown). What a study waits on
    before each trial."""

    taken_ms: float  # wall clock, at the end of the second
    seconds: float
    cpu_pct: float  # busy, every process
    service_pct: float  # this service's own
    cpu_temperature_c: float = math.nan
    gpu_temperature_c: dict[int, float] = field(default_factory=dict)

    @property
    def others_pct(self) -> float:
        """Busy time of everyone but this service (steal included: another guest took it)."""
        return max(self.cpu_pct - self.service_pct, 0.0)


@dataclass(frozen=True)
class Tick:
    mono: float
    host: dict[str, float]  # HOST_ROW fields by name
    gpus: list[GpuReading]
    power: PowerSample
    gpu_conditions: dict[int, GpuConditions]
    own_cpu_s: float = math.nan  # this process' CPU seconds at the tick (its footprint)
    own_resident_bytes: float = math.nan  # its resident memory, read once a second
    memory_used_bytes: float = math.nan  # the machine's memory in use, read once a second


class TickReader:
    """Reads a tick. ``step_back(step)`` is called when the wall clock has stepped back, before the tick is
    stamped, to move what was stamped ahead; it returns whether it did (else timestamps hold still until it
    can: they never decrease)."""

    def __init__(self, sources: Sources, clocks: Clocks, watch: ClockWatch | None = None,
                 step_back: Callable[[StepBack], bool] = lambda step: False):
        self.sources = sources
        self.clocks = clocks
        self.watch = watch or ClockWatch()
        self.step_back = step_back
        self._prev_mono: float | None = None
        self._last_ts_ms: float | None = None
        self._net_rates = (math.nan, math.nan)
        self._prev_cpu: CpuTimes | None = None
        self._slow_mono = 0.0
        self._slow: SlowReading | None = None
        self._conditions: Conditions | None = None
        self._condition_values: dict[str, float] = {}
        self._failures_logged: set[str] = set()
        self.last_gpus: list[GpuReading] = []  # the newest tick's GPU readings
        self.gpu_conditions: dict[int, GpuConditions] = {}  # the newest once-a-second reading, by GPU
        self.conditions_cpu_s = 0.0  # this thread's CPU time spent on the conditions' readings (the footprint)
        self._marks: deque[CpuMark] = deque()  # the ticks' counters over the last NOW_WINDOW_S and one more
        self._span: tuple[CpuMark, CpuMark] | None = None  # its ends, swapped whole (other threads read it)

    def prime(self, last_ts_ms: float | None) -> None:
        """Take the first counter readings (the next tick's differences start here); ``last_ts_ms`` is the
        newest stored timestamp."""
        self._last_ts_ms = last_ts_ms
        fast = self.sources.host.read_fast()
        self._prev_cpu = fast.cpu
        self._prev_mono = self._slow_mono = self.clocks.monotonic()
        self._marks.clear()
        self._mark(self._prev_mono, self.clocks.wall() * 1000.0, fast.cpu, fast.logical_cpus)
        self._slow = self.sources.host.read_slow()
        self._net_rates = (math.nan, math.nan)  # no rate before the second reading
        self._read_conditions(0.0)

    @property
    def conditions(self) -> Conditions | None:
        """The latest reading of the conditions (a frozen record: the API thread may read it as it is)."""
        return self._conditions

    def _read_conditions(self, elapsed_s: float) -> None:
        started = time.thread_time()
        try:
            self._read_each_condition(elapsed_s)
        finally:
            self.conditions_cpu_s += time.thread_time() - started

    def _read_each_condition(self, elapsed_s: float) -> None:
        if self.sources.gpu.gpus:
            self.gpu_conditions = self.sources.gpu.read_conditions()
        reader = self.sources.conditions
        if reader is None:
            return
        current = reader.read()
        self._condition_values = condition_values(self._conditions, current, elapsed_s)
        self._conditions = current
        for what, error in reader.failures.items():
            if what not in self._failures_logged:
                self._failures_logged.add(what)
                log.warning("%s cannot be read (%s): those readings are unavailable, the rest go on", what, error)

    def _mark(self, mono: float, wall_ms: float, cpu: CpuTimes, logical_cpus: int) -> None:
        """Keep this tick's counters, and those of the ticks back to NOW_WINDOW_S before it."""
        marks = self._marks
        marks.append(CpuMark(mono, wall_ms, cpu, self.clocks.process_cpu(), logical_cpus))
        while len(marks) > 2 and marks[1].mono <= mono - NOW_WINDOW_S:
            marks.popleft()
        self._span = (marks[0], marks[-1])

    @property
    def now(self) -> MachineNow | None:
        """The CPU by whom since the tick NOW_WINDOW_S (or a little more) ago, and the latest temperatures;
        None until the ticks span that long (any thread)."""
        span = self._span
        if span is None or span[1].mono - span[0].mono < NOW_WINDOW_S * 0.9:
            return None
        first, last = span
        seconds = last.mono - first.mono
        conditions = self._conditions
        own_pct = 100.0 * max(last.own_s - first.own_s, 0.0) / (seconds * max(last.logical_cpus, 1))
        return MachineNow(taken_ms=last.wall_ms, seconds=seconds, cpu_pct=cpu_busy_pct(first.cpu, last.cpu),
                          service_pct=min(own_pct, 100.0),
                          cpu_temperature_c=conditions.sensors.package_c if conditions is not None else math.nan,
                          gpu_temperature_c={g.index: g.temperature_c for g in self.last_gpus
                                             if g.ok and math.isfinite(g.temperature_c)})

    def read(self) -> Tick:
        sources = self.sources
        mono_now = self.clocks.monotonic()
        wall_ms = self.clocks.wall() * 1000.0
        interval = mono_now - self._prev_mono if self._prev_mono is not None else 0.0
        self._prev_mono = mono_now
        step = self.watch.observe(wall_ms, mono_now, self._last_ts_ms)
        if step is not None and self.step_back(step):
            assert self._last_ts_ms is not None  # a step back is found against a stamped tick
            self._last_ts_ms += step.shift_ms
            self.watch.moved(step, wall_ms - mono_now * 1000.0)
        if self._last_ts_ms is not None and wall_ms <= self._last_ts_ms:
            # a small step back (or one not yet undone): keep rows in order, advance by the monotonic interval
            wall_ms = self._last_ts_ms + max(interval * 1000.0, 1.0)
        self._last_ts_ms = wall_ms
        fast = sources.host.read_fast()
        assert self._prev_cpu is not None and self._slow is not None, "prime() comes first"
        if mono_now - self._slow_mono >= SLOW_READ_S:
            previous, elapsed = self._slow, mono_now - self._slow_mono
            self._slow = sources.host.read_slow()
            self._slow_mono = mono_now
            self._net_rates = (max(self._slow.net_rx_bytes - previous.net_rx_bytes, 0) / elapsed,
                               max(self._slow.net_tx_bytes - previous.net_tx_bytes, 0) / elapsed)
            self._read_conditions(elapsed)
        cpu = cpu_busy_pct(self._prev_cpu, fast.cpu)
        self._prev_cpu = fast.cpu
        self._mark(mono_now, wall_ms, fast.cpu, fast.logical_cpus)
        gpus = sources.gpu.read() if sources.gpu.gpus else []
        power = sources.meter.measure(interval, cpu, gpus)
        utilizations = [g.utilization_pct for g in gpus if g.ok and math.isfinite(g.utilization_pct)]
        slow = self._slow
        self.last_gpus = gpus
        return Tick(mono=mono_now, gpus=gpus, power=power, gpu_conditions=self.gpu_conditions,
                    own_cpu_s=self._marks[-1].own_s, own_resident_bytes=slow.own_resident_bytes,
                    memory_used_bytes=slow.memory_used_bytes, host={
            "ts_ms": wall_ms, "interval_s": interval, "cpu_pct": cpu, "mem_pct": slow.memory_used_pct,
            "load1": slow.load1, "logical_cpus": fast.logical_cpus, "tcp_estab": slow.tcp_established,
            "rx_bps": self._net_rates[0], "tx_bps": self._net_rates[1],
            "gpu_pct": float(np.mean(utilizations)) if utilizations else math.nan,
            "latency_ms": sources.latency.take_fresh(), "cpu_j": power.cpu_j, "gpu_j": power.gpu_j,
            "gpu_idle_j": power.gpu_idle_j, "mem_j": power.mem_j, "methods": power.methods,
            **self._condition_values,
        })


def gpu_rows(tick: Tick) -> list[dict[str, float]]:
    """The per-GPU rows (GPU_ROW fields by name) of a tick."""
    ts = tick.host["ts_ms"]
    unknown = GpuConditions()
    rows = []
    for g in tick.gpus:
        c = tick.gpu_conditions.get(g.index, unknown)
        rows.append({"ts_ms": ts, "gpu": g.index, "util_pct": g.utilization_pct,
                     "mem_used_bytes": g.memory_used_bytes, "power_w": g.power_w, "temp_c": g.temperature_c,
                     "sm_clock_mhz": c.sm_clock_mhz, "memory_clock_mhz": c.memory_clock_mhz, "fan_pct": c.fan_pct,
                     "throttle_mask": c.throttle_mask})
    return rows


NAN = math.nan
CONDITION_FIELDS = (
    "cpu_user_pct", "cpu_system_pct", "cpu_iowait_pct", "cpu_steal_pct", "psi_cpu_pct", "psi_memory_pct",
    "psi_io_pct", "swap_used_bytes", "swap_in_bps", "swap_out_bps", "disk_read_bps", "disk_write_bps",
    "disk_read_ops", "disk_write_ops", "fs_used_pct", "cpu_temp_c", "cpu_core_temp_c", "cpu_freq_mhz",
    "cpu_freq_min_mhz", "cpu_freq_pct", "cpu_throttle_eps", "cpu_core_max_pct",
)


def condition_values(previous: Conditions | None, current: Conditions, elapsed_s: float) -> dict[str, float]:
    """HOST_ROW fields by name; rates and shares are NaN without a previous reading, and where a counter
    went back (a device reset is a gap, never a negative rate)."""
    values = dict.fromkeys(CONDITION_FIELDS, NAN)
    if previous is not None and previous.kinds is not None and current.kinds is not None:
        shares = kind_shares(previous.kinds, current.kinds)
        values.update(cpu_user_pct=shares["user"], cpu_system_pct=shares["system"],
                      cpu_iowait_pct=shares["iowait"], cpu_steal_pct=shares["steal"])
    if previous is not None and len(previous.cores) == len(current.cores) and current.cores:
        values["cpu_core_max_pct"] = max(busy_share(before, now) for before, now in
                                         zip(previous.cores, current.cores, strict=True))
    values.update(psi_cpu_pct=current.pressure_pct.get("cpu", NAN),
                  psi_memory_pct=current.pressure_pct.get("memory", NAN),
                  psi_io_pct=current.pressure_pct.get("io", NAN), swap_used_bytes=current.swap_used_bytes,
                  fs_used_pct=current.filesystem_used_pct)
    if previous is not None:
        values.update(swap_in_bps=counter_rate(previous.swapped_in_bytes, current.swapped_in_bytes, elapsed_s),
                      swap_out_bps=counter_rate(previous.swapped_out_bytes, current.swapped_out_bytes, elapsed_s))
        if previous.disks is not None and current.disks is not None:
            before, now = previous.disks, current.disks
            values.update(disk_read_bps=counter_rate(before.read_bytes, now.read_bytes, elapsed_s),
                          disk_write_bps=counter_rate(before.write_bytes, now.write_bytes, elapsed_s),
                          disk_read_ops=counter_rate(before.reads, now.reads, elapsed_s),
                          disk_write_ops=counter_rate(before.writes, now.writes, elapsed_s))
        values["cpu_throttle_eps"] = counter_rate(previous.sensors.throttle_count, current.sensors.throttle_count,
                                                  elapsed_s)
    sensors = current.sensors
    share = 100.0 * sensors.freq_mean_mhz / sensors.freq_max_mhz if sensors.freq_max_mhz > 0 else NAN
    values.update(cpu_temp_c=sensors.package_c, cpu_core_temp_c=sensors.hottest_core_c,
                  cpu_freq_mhz=sensors.freq_mean_mhz, cpu_freq_min_mhz=sensors.freq_min_mhz, cpu_freq_pct=share)
    return values
