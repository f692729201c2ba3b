"""``tsstats synth``, synthetic history: a workstation's days (daily cycles, bursts, idle nights, GPU jobs)
written through the sampler's own write path and rollups, so that charts and benchmarks have data at once."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tsstats.assembly import open_host_reader, open_store
from tsstats.cli.data import OutputError, check_directory
from tsstats.cli.runtime import EXIT_FAILURE, EXIT_USAGE
from tsstats.core.inputs import rfc3339_ms
from tsstats.core.units import DAY_MS, MS_PER_S
from tsstats.figures.methods import METHOD_GPU_POWER, cpu_model_power_w, dimm_model_power_w
from tsstats.sampling.flushing import write_batch
from tsstats.sources.power import count_dimms, match_tdp
from tsstats.storage.rollups import Rollups
from tsstats.storage.rows import GPU_ROW, HOST_ROW, empty_columns, newest_sample_ms
from tsstats.storage.sql import StoreError
from tsstats.storage.store import Store

CHUNK_S = 3600.0  # one transaction per synthetic hour


@dataclass(frozen=True)
class Machine:
    """The synthetic workstation (``live_machine`` gives this one's CPUs, TDP and DIMMs)."""

    logical_cpus: int = 16
    tdp_w: float = 105.0
    dimms: int = 4
    gpu_idle_w: float = 30.0
    gpu_max_w: float = 300.0
    gpu_memory_bytes: float = 24 * 2**30


def _activity(hours_of_day: np.ndarray) -> np.ndarray:
    """0 at night, rising through the morning to 1 mid-afternoon, falling in the evening."""
    day = np.clip(np.sin(np.pi * (hours_of_day - 7.0) / 14.0), 0.0, None)
    return day ** 1.5


def exponential_average(values: np.ndarray, alpha: float, start: float) -> np.ndarray:
    """y[i] = y[i-1] + alpha (x[i] - y[i-1]) from y[-1] = start, without a Python loop (an hour of rows keeps
    the weights within float64's range)."""
    n = len(values)
    decay = 1.0 - alpha
    k = np.arange(1, n + 1)
    weights = decay ** (-k.astype(float))
    return decay ** k * (start + alpha * np.cumsum(values * weights))


def _segments(rng: np.random.Generator, n: int, rate_per_row: float, min_len: int, max_len: int) -> np.ndarray:
    """A 0/1 mask of random segments (bursts, GPU jobs) over ``n`` rows."""
    mask = np.zeros(n)
    starts = np.nonzero(rng.random(n) < rate_per_row)[0]
    for start in starts:
        mask[start:start + int(rng.integers(min_len, max_len))] = 1.0
    return mask


def synth_conditions(rng: np.random.Generator, cpu: np.ndarray, activity: np.ndarray, read: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """The conditions' columns (read once a second, carried between), at their sensors' resolution: CPU time by
    kind and pressure follow the load, the clock and the package's heat follow it too, disks move with
    activity, swap stays still and nothing throttles."""
    n = len(cpu)
    user = cpu * 0.8
    clock = np.round(800.0 + 3200.0 * np.clip(cpu / 60.0, 0.0, 1.0))
    values = {
        "cpu_user_pct": user, "cpu_system_pct": cpu - user, "cpu_iowait_pct": rng.exponential(0.3, n),
        "cpu_steal_pct": np.zeros(n), "psi_cpu_pct": np.round(np.clip(cpu - 50.0, 0.0, None) * 0.5, 2),
        "psi_memory_pct": np.zeros(n), "psi_io_pct": np.round(rng.exponential(0.1, n), 2),
        "swap_used_bytes": np.full(n, 64.0 * 1048576), "swap_in_bps": np.zeros(n), "swap_out_bps": np.zeros(n),
        "disk_read_bps": np.round(rng.lognormal(8.0 + 3.0 * activity, 1.5)),
        "disk_write_bps": np.round(rng.lognormal(9.0 + 2.0 * activity, 1.5)),
        "disk_read_ops": np.round(rng.exponential(2.0 + 20.0 * activity), 2),
        "disk_write_ops": np.round(rng.exponential(5.0 + 20.0 * activity), 2),
        "fs_used_pct": np.full(n, 41.3), "cpu_temp_c": np.round(38.0 + 0.45 * cpu),
        "cpu_core_temp_c": np.round(40.0 + 0.5 * cpu), "cpu_freq_mhz": clock, "cpu_freq_min_mhz": np.full(n, 800.0),
        "cpu_freq_pct": np.round(100.0 * clock / 4000.0, 1), "cpu_throttle_eps": np.zeros(n),
        "cpu_core_max_pct": np.round(np.clip(cpu * 1.4, 0.0, 100.0), 1),
    }
    return {name: column[read] for name, column in values.items()}


def synth_chunk(rng: np.random.Generator, ts_ms: np.ndarray, hz: float, gpus: int, machine: Machine,
                state: dict, conditions: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Ring columns for the samples at ``ts_ms`` (and per-GPU columns), continuing ``state``."""
    n = len(ts_ms)
    interval = 1.0 / hz
    hours = (ts_ms / 3_600_000.0) % 24.0
    activity = _activity(hours)
    bursts = _segments(rng, n, 1.0 / (900 * hz), int(30 * hz), int(300 * hz))
    cpu = 3.0 + 40.0 * activity + 45.0 * bursts * (0.3 + activity) + rng.normal(0.0, 2.5, n)
    cpu = np.clip(cpu, 0.0, 100.0)
    memory = np.clip(state["memory"] + np.cumsum(rng.normal(0.0, 0.002, n)) + 10.0 * activity, 5.0, 95.0)
    state["memory"] = float(memory[-1] - 10.0 * activity[-1])
    alpha = 1.0 - math.exp(-interval / 60.0)  # the kernel's 1-minute load average
    load = exponential_average(cpu / 100.0 * machine.logical_cpus, alpha, state["load"])
    state["load"] = float(load[-1])
    tcp = np.round(12 + 25 * activity + rng.normal(0, 2, n)).clip(0)
    rx = rng.lognormal(7.0 + 3.0 * activity, 1.0)  # bytes per second
    tx = rng.lognormal(6.0 + 2.5 * activity, 1.0)
    latency = np.where(np.arange(n) % max(int(2 * hz), 1) == 0, rng.normal(22.0, 4.0, n).clip(1.0), np.nan)
    cpu_w = cpu_model_power_w(machine.tdp_w, cpu / 100.0)  # the sampler's own models
    memory_w, _ = dimm_model_power_w(machine.dimms)
    # levels and network are read once a second; the ticks between carry the latest reading
    read = np.maximum.accumulate(np.where((np.round(ts_ms) % 1000.0) < (1000.0 / hz), np.arange(n), 0))
    memory, load, tcp, rx, tx = (values[read] for values in (memory, load, tcp, rx, tx))
    columns = empty_columns(HOST_ROW, n)
    columns.update(ts_ms=ts_ms, interval_s=np.full(n, interval), cpu_pct=np.round(cpu, 1), mem_pct=np.round(memory, 1),
                   load1=np.round(load, 2), logical_cpus=np.full(n, machine.logical_cpus), tcp_estab=tcp,
                   rx_bps=np.round(rx), tx_bps=np.round(tx), latency_ms=latency, cpu_j=cpu_w * interval,
                   mem_j=np.full(n, memory_w * interval), methods=np.zeros(n))
    if conditions:
        columns.update(synth_conditions(rng, cpu, activity, read))
    gpu_columns = empty_columns(GPU_ROW, 0)
    if gpus:
        jobs = _segments(rng, n, 1.0 / (4 * 3600 * hz), int(600 * hz), int(3 * 3600 * hz))
        rows = []
        total_w = np.zeros(n)
        utilization_sum = np.zeros(n)
        for index in range(gpus):
            utilization = np.clip(jobs * rng.normal(92.0, 5.0, n) + (1 - jobs) * rng.normal(1.0, 1.0, n), 0, 100)
            utilization = np.round(utilization)
            power = machine.gpu_idle_w + (machine.gpu_max_w - machine.gpu_idle_w) * utilization / 100.0
            memory_used = np.where(jobs > 0, 0.7, 0.03) * machine.gpu_memory_bytes
            temperature = np.round(35 + 45 * utilization / 100.0)
            clock = np.round(np.where(utilization > 5, 1980.0, 345.0)[read])  # read once a second, as the sampler does
            rows.append(np.column_stack([{"ts_ms": ts_ms, "gpu": np.full(n, index), "util_pct": utilization,
                                          "mem_used_bytes": memory_used, "power_w": power, "temp_c": temperature,
                                          "sm_clock_mhz": clock, "memory_clock_mhz": np.full(n, 2619.0),
                                          "fan_pct": np.round(30.0 + 0.5 * temperature[read]),
                                          "throttle_mask": np.where(utilization[read] > 5, 0.0, 1.0)}[name]
                                         for name in GPU_ROW.names]))
            total_w += power
            utilization_sum += utilization
        stacked = np.vstack(rows)
        stacked = stacked[np.argsort(stacked[:, 0], kind="stable")]
        gpu_columns = {name: stacked[:, i] for i, name in enumerate(GPU_ROW.names)}
        columns.update(gpu_pct=utilization_sum / gpus, gpu_j=total_w * interval,
                       gpu_idle_j=np.full(n, machine.gpu_idle_w * gpus * interval),
                       methods=np.full(n, float(METHOD_GPU_POWER)))
    return columns, gpu_columns


def live_machine() -> Machine:
    """This machine's CPUs, TDP and DIMMs, as the live sampler models them, so that synthetic history meets
    the live samples without a step in power at the seam."""
    host = open_host_reader()
    try:
        logical_cpus = host.read_fast().logical_cpus
        tdp = match_tdp(host.cpu_model(), logical_cpus)
    finally:
        host.close()
    _, dimms = dimm_model_power_w(count_dimms("/sys"))
    return Machine(logical_cpus=logical_cpus, tdp_w=tdp.tdp_w, dimms=dimms)


def synthesize(store: Store, days: float, hz: float, gpus: int = 0, end_s: float | None = None, seed: int = 1,
               progress: Callable[[float, int], None] | None = None, conditions: bool = True,
               machine: Machine | None = None) -> int:
    """Write ``days`` of samples at ``hz`` ending at ``end_s`` (default now); returns the samples written.
    ``conditions=False`` leaves the conditions' columns empty (as a version before them wrote)."""
    end_ms = (time.time() if end_s is None else end_s) * MS_PER_S
    start_ms = end_ms - days * DAY_MS
    newest = newest_sample_ms(store.writer)
    if newest is not None and newest >= start_ms:
        raise ValueError(f"{store.path} already holds samples up to {rfc3339_ms(newest)}, after the synthetic "
                         f"start {rfc3339_ms(start_ms)}; use an empty file or fewer --days")
    rng = np.random.default_rng(seed)
    rollups = Rollups()
    rollups.load(store.writer)
    machine = machine or Machine()
    state = {"memory": 35.0, "load": 1.0}
    step_ms = 1000.0 / hz
    written = 0
    chunk_ms = CHUNK_S * MS_PER_S
    chunk_start = start_ms
    first_ms = None if store.get_meta("first_sample_ms") is not None else start_ms
    while chunk_start < end_ms:
        chunk_end = min(chunk_start + chunk_ms, end_ms)
        ts = np.arange(chunk_start, chunk_end, step_ms)
        ts = np.round(ts)
        if len(ts):
            columns, gpu_columns = synth_chunk(rng, ts, hz, gpus, machine, state, conditions)
            write_batch(store, rollups, columns, gpu_columns if gpus else None, None,
                        {"first_sample_ms": repr(float(first_ms))} if first_ms is not None else None)
            first_ms = None
            written += len(ts)
        chunk_start = chunk_end
        if progress is not None:
            progress((chunk_start - start_ms) / (end_ms - start_ms), written)
    rollups.close(store, end_ms)
    store.checkpoint()
    return written


class ProgressBar:
    """A progress line on stderr: redrawn in place on a terminal, every 10% otherwise."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.shown = -1

    def __call__(self, fraction: float, samples: int) -> None:
        elapsed = time.monotonic() - self.started
        rate = samples / elapsed if elapsed > 0 else 0.0
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        width = 30
        bar = "#" * int(width * fraction) + "-" * (width - int(width * fraction))
        line = (f"{self.label} [{bar}] {100 * fraction:5.1f}%  {samples:,} samples  {rate:,.0f}/s  "
                f"ETA {eta:4.0f} s")
        if self.stream.isatty():
            self.stream.write("\r" + line + ("\n" if fraction >= 1 else ""))
            self.stream.flush()
        elif int(fraction * 10) > self.shown:
            self.shown = int(fraction * 10)
            self.stream.write(line + "\n")
            self.stream.flush()


def run_synth(args: argparse.Namespace) -> int:
    try:
        check_directory(args.db)
    except OutputError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        store = open_store(args.db)
    except StoreError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        written = synthesize(store, args.days, args.hz, gpus=args.gpus, seed=args.seed, machine=live_machine(),
                             progress=ProgressBar(f"synth {args.days:g} d at {args.hz:g} Hz"))
    except ValueError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        store.close()
    print(f"wrote {written:,} samples ({args.days:g} days at {args.hz:g} Hz, {args.gpus} GPUs) to {args.db}")
    return 0
