"""The metrics kept for history: names, units, and how each is computed from a stored sample row.

Each metric has a short column stem used in the rollup tables of ``schema.sql`` (``<stem>_min``,
``<stem>_max``, ``<stem>_sum``, ``<stem>_n``, ``<stem>_last``) and a SQL expression over ``samples``
(or ``gpu_samples`` for per-GPU metrics).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tsstats.sources.gpu import THROTTLED
from tsstats.storage.rows import GPU_ROW, HOST_ROW

AGGREGATES = ("avg", "min", "max", "last")


@dataclass(frozen=True)
class Metric:
    name: str
    stem: str
    unit: str
    description: str
    expression: str
    kind: str = "gauge"


def _power(*energies: str) -> str:
    """Watts from the interval's stored energy: joules over seconds, as one factor on the stored integers (a
    simpler expression plans and runs faster: it stands six times in each history query)."""
    interval = HOST_ROW.field("interval_s")
    scale = HOST_ROW.field(energies[0]).scale
    assert all(HOST_ROW.field(name).scale == scale for name in energies)
    stored = " + ".join(f"coalesce({HOST_ROW.field(name).stored}, 0)" if i else HOST_ROW.field(name).stored
                        for i, name in enumerate(energies))
    return f"({stored}) * {interval.scale / scale!r} / nullif({interval.stored}, 0)"


HOST_METRICS: tuple[Metric, ...] = (
    Metric("cpuUsage", "cpu", "%", "share of all logical CPUs busy", HOST_ROW.sql("cpu_pct")),
    Metric("memoryUsage", "mem", "%", "(total - available) / total physical memory", HOST_ROW.sql("mem_pct")),
    Metric("systemLoad", "load", "%", "1-minute load average / logical CPUs x 100",
           f"{HOST_ROW.field('load1').stored} * {100.0 / HOST_ROW.field('load1').scale!r} "
           f"/ nullif({HOST_ROW.sql('logical_cpus')}, 0)"),
    Metric("activeConnections", "tcp", "count", "TCP connections ESTABLISHED", HOST_ROW.sql("tcp_estab")),
    Metric("networkLatency", "lat", "ms", "median network round trip of the latest probe",
           HOST_ROW.sql("latency_ms")),
    Metric("networkReceive", "rx", "B/s", "bytes received per second, loopback excluded", HOST_ROW.sql("rx_bps")),
    Metric("networkTransmit", "tx", "B/s", "bytes sent per second, loopback excluded", HOST_ROW.sql("tx_bps")),
    Metric("gpuUsage", "gpu", "%", "NVML GPU utilization, mean over all GPUs", HOST_ROW.sql("gpu_pct")),
    Metric("cpuPower", "pcpu", "W", "CPU package power (RAPL, or the TDP model)", _power("cpu_j")),
    Metric("gpuPower", "pgpu", "W", "power of all GPUs (NVML)", _power("gpu_j")),
    Metric("memoryPower", "pmem", "W", "memory power (RAPL dram, or the DIMM model)", _power("mem_j")),
    Metric("power", "ptot", "W", "CPU + GPU + memory power, before PUE", _power("cpu_j", "gpu_j", "mem_j")),
    # the conditions of a run, each over the last second (docs/conditions.md)
    Metric("cpuUser", "usr", "%", "share of CPU time in user mode (with nice) over the last second",
           HOST_ROW.sql("cpu_user_pct")),
    Metric("cpuSystem", "sys", "%", "share of CPU time in the kernel (with interrupts) over the last second",
           HOST_ROW.sql("cpu_system_pct")),
    Metric("cpuIowait", "iow", "%", "share of CPU time idle while waiting for I/O over the last second",
           HOST_ROW.sql("cpu_iowait_pct")),
    Metric("cpuSteal", "stl", "%", "share of CPU time the hypervisor gave to others over the last second",
           HOST_ROW.sql("cpu_steal_pct")),
    Metric("pressureCpu", "psic", "%", "CPU pressure stall, some avg10", HOST_ROW.sql("psi_cpu_pct")),
    Metric("pressureMemory", "psim", "%", "memory pressure stall, some avg10", HOST_ROW.sql("psi_memory_pct")),
    Metric("pressureIo", "psio", "%", "I/O pressure stall, some avg10", HOST_ROW.sql("psi_io_pct")),
    Metric("swapUsed", "swap", "MiB", "swap in use", HOST_ROW.field("swap_used_bytes").stored),
    Metric("swapIn", "swin", "B/s", "bytes swapped in per second", HOST_ROW.sql("swap_in_bps")),
    Metric("swapOut", "swout", "B/s", "bytes swapped out per second", HOST_ROW.sql("swap_out_bps")),
    Metric("diskRead", "drd", "B/s", "bytes read per second, whole disks", HOST_ROW.sql("disk_read_bps")),
    Metric("diskWrite", "dwr", "B/s", "bytes written per second, whole disks", HOST_ROW.sql("disk_write_bps")),
    Metric("diskReadOps", "drdo", "ops/s", "read operations per second, whole disks", HOST_ROW.sql("disk_read_ops")),
    Metric("diskWriteOps", "dwro", "ops/s", "write operations per second, whole disks",
           HOST_ROW.sql("disk_write_ops")),
    Metric("filesystemUsed", "fs", "%", "used share of the filesystem holding the database",
           HOST_ROW.sql("fs_used_pct")),
    Metric("cpuTemperature", "tpkg", "°C", "CPU package temperature", HOST_ROW.sql("cpu_temp_c")),
    Metric("cpuCoreTemperature", "tcore", "°C", "temperature of the hottest CPU core", HOST_ROW.sql("cpu_core_temp_c")),
    Metric("cpuFrequency", "freq", "MHz", "CPU clock, mean over cores", HOST_ROW.sql("cpu_freq_mhz")),
    Metric("cpuFrequencyMin", "fmin", "MHz", "CPU clock of the slowest core", HOST_ROW.sql("cpu_freq_min_mhz")),
    Metric("cpuFrequencyShare", "fshr", "%", "mean CPU clock as a share of the highest maximum clock",
           HOST_ROW.sql("cpu_freq_pct")),
    Metric("cpuThrottleEvents", "thr", "events/s", "CPU thermal throttle events per second (cores and packages)",
           HOST_ROW.sql("cpu_throttle_eps")),
    Metric("cpuBusiestCore", "coremax", "%", "busy share of the busiest core over the last second",
           HOST_ROW.sql("cpu_core_max_pct")),
    # the sampler's own pace: 1/sample_hz while anything needs the full rate, 1/idle_sample_hz otherwise; a
    # bucket's mean is its covered time over its samples, so its rate is exactly 1 / the mean
    Metric("sampleInterval", "ivl", "s", "seconds between samples: the sampler's rate when they were taken",
           HOST_ROW.sql("interval_s")),
)
GPU_METRICS: tuple[Metric, ...] = (
    Metric("Usage", "util", "%", "NVML utilization of GPU {i}", GPU_ROW.sql("util_pct")),
    Metric("MemoryUsed", "memused", "MiB", "memory used on GPU {i}", GPU_ROW.field("mem_used_bytes").stored),
    Metric("Power", "power", "W", "power of GPU {i}", GPU_ROW.sql("power_w")),
    Metric("Temperature", "temp", "°C", "temperature of GPU {i}", GPU_ROW.sql("temp_c")),
    Metric("SmClock", "smclk", "MHz", "SM (GFX) clock of GPU {i}", GPU_ROW.sql("sm_clock_mhz")),
    Metric("MemoryClock", "memclk", "MHz", "memory clock of GPU {i}", GPU_ROW.sql("memory_clock_mhz")),
    Metric("Fan", "fan", "%", "fan speed of GPU {i}", GPU_ROW.sql("fan_pct")),
    Metric("Throttled", "thrtl", "%", "share of time GPU {i}'s clocks were held down (power cap, thermal or "
           "hardware slowdown)", f"CASE WHEN {GPU_ROW.sql('throttle_mask')} IS NULL THEN NULL WHEN "
           f"({GPU_ROW.sql('throttle_mask')}::INTEGER & {THROTTLED}) <> 0 THEN 100.0 ELSE 0.0 END"),
)
# Energy per bucket, summed (joules), kept beside the metrics in the rollups.
ENERGY_SUMS: tuple[tuple[str, str], ...] = (
    ("cpu_j", HOST_ROW.sql("cpu_j")),
    ("cpu_active_j", f"{HOST_ROW.sql('cpu_j')} * {HOST_ROW.sql('cpu_pct')} / 100.0"),
    ("gpu_j", HOST_ROW.sql("gpu_j")),
    ("gpu_idle_j", HOST_ROW.sql("gpu_idle_j")),
    ("mem_j", HOST_ROW.sql("mem_j")),
    ("covered_s", HOST_ROW.sql("interval_s")),
)
ENERGY_COMPONENTS = ("cpu_j", "gpu_j", "mem_j")


def energy_expression(column: str, from_raw: bool) -> str:
    """SQL for the joules of one ENERGY_SUMS column per row (``total_j``: CPU + GPU + memory), from raw
    samples or from rollup rows."""
    expressions = dict(ENERGY_SUMS)
    parts = ENERGY_COMPONENTS if column == "total_j" else (column,)
    return " + ".join(f"coalesce({expressions[part] if from_raw else part}, 0)" for part in parts)


ENERGY_METRICS: tuple[Metric, ...] = (
    Metric("cpuEnergy", "cpu_j", "J", "CPU energy since the oldest retained hour, before PUE", "", "counter"),
    Metric("gpuEnergy", "gpu_j", "J", "GPU energy since the oldest retained hour, before PUE", "", "counter"),
    Metric("memoryEnergy", "mem_j", "J", "memory energy since the oldest retained hour, before PUE", "", "counter"),
    Metric("energy", "total_j", "J", "CPU + GPU + memory energy since the oldest retained hour, before PUE", "",
           "counter"),
)
_GPU_NAME = re.compile(r"^gpu(\d{1,2})(" + "|".join(metric.name for metric in GPU_METRICS) + ")$")


def gpu_metric(name: str) -> tuple[int, Metric] | None:
    """(GPU index, metric) for a per-GPU name such as ``gpu0Usage``."""
    match = _GPU_NAME.match(name)
    if not match:
        return None
    for metric in GPU_METRICS:
        if metric.name == match.group(2):
            return int(match.group(1)), metric
    return None


def catalog(gpu_indexes: list[int]) -> list[dict[str, str]]:
    entries = [{"name": m.name, "unit": m.unit, "description": m.description, "kind": m.kind}
               for m in HOST_METRICS + ENERGY_METRICS]
    for index in gpu_indexes:
        for metric in GPU_METRICS:
            entries.append({"name": f"gpu{index}{metric.name}", "unit": metric.unit,
                            "description": metric.description.format(i=index), "kind": "gauge"})
    return entries


HOST_BY_NAME = {metric.name: metric for metric in HOST_METRICS}
ENERGY_BY_NAME = {metric.name: metric for metric in ENERGY_METRICS}


def rollup_columns(metrics: tuple[Metric, ...]) -> list[str]:
    return [f"{metric.stem}_{part}" for metric in metrics for part in ("min", "max", "sum", "n", "last")]


def aggregate_parts(metric: Metric, from_raw: bool) -> dict[str, str]:
    """SQL aggregates of one metric per group: min, max, sum, n (count), last and last_time, from raw rows
    (``samples``/``gpu_samples``) or by merging finer rollup rows."""
    if from_raw:
        e = f"({metric.expression})"
        known_time = f"CASE WHEN {e} IS NOT NULL THEN ts_ms END"  # arg_max skips a NULL key: half the planning
        return {"min": f"min({e})", "max": f"max({e})", "sum": f"sum({e})", "n": f"count({e})",  # of a FILTER
                "last": f"arg_max({e}, {known_time})", "last_time": f"max({known_time})"}
    s = metric.stem
    return {"min": f"min({s}_min)", "max": f"max({s}_max)", "sum": f"sum({s}_sum)", "n": f"sum({s}_n)",
            "last": f"arg_max({s}_last, bucket_ms) FILTER (WHERE {s}_last IS NOT NULL)",
            "last_time": f"max(bucket_ms) FILTER (WHERE {s}_last IS NOT NULL)"}


ROLLUP_PARTS = ("min", "max", "sum", "n", "last")  # the order of ``rollup_columns``


def rollup_aggregates(metrics: tuple[Metric, ...], from_raw: bool) -> list[str]:
    """SELECT list making one rollup row per group, in ``rollup_columns`` order."""
    return [aggregate_parts(metric, from_raw)[part] for metric in metrics for part in ROLLUP_PARTS]
