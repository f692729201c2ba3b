"""A finished run's conditions from the samples of its window (stored, and the ring's rows not stored yet):
peak temperatures, throttled seconds, clock share, swap-in, steal; who had the CPUs from the attributor's
reads of its process trees, the machine and this service. Runs on the writer thread at the run's end. The
samples are read once for a span (``window_samples``) and each window takes its slice, so that a thousand
phases closing together cost one read."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tsstats.figures.energy import Attributed
from tsstats.figures.fairness import MIB, CpuShares, RunConditions, cpu_shares, gpu_contention
from tsstats.sources.gpu import THROTTLED, reason_names
from tsstats.storage.rows import GPU_ROW, HOST_ROW
from tsstats.storage.sql import Connection, float_columns

COLUMNS = ("ts_ms", "interval_s", "cpu_temp_c", "cpu_throttle_eps", "cpu_freq_pct", "swap_in_bps", "cpu_steal_pct")
GPU_COLUMNS = ("ts_ms", "gpu", "throttle_mask", "temp_c")


@dataclass(frozen=True)
class WindowSamples:
    """The host and per-GPU columns of a span in ring units, stored rows and pending ones together, in time
    order."""

    host: dict[str, np.ndarray]
    gpu: dict[str, np.ndarray]

    def slice(self, from_ms: int, to_ms: int) -> WindowSamples:
        """The rows of [from_ms, to_ms]."""
        return WindowSamples(_between(self.host, from_ms, to_ms), _between(self.gpu, from_ms, to_ms))


def _between(columns: dict[str, np.ndarray], from_ms: int, to_ms: int) -> dict[str, np.ndarray]:
    times = columns["ts_ms"]
    start, end = np.searchsorted(times, from_ms, side="left"), np.searchsorted(times, to_ms, side="right")
    return {name: values[start:end] for name, values in columns.items()}


def _read(con: Connection, table: str, spec, names: tuple[str, ...], pending: dict[str, np.ndarray], from_ms: int,
          to_ms: int, held_only: bool) -> dict[str, np.ndarray]:
    if held_only:
        stored = [np.empty(0)] * len(names)
    else:
        select = ", ".join(spec.sql(name) for name in names)
        stored = float_columns(con.execute(f"SELECT {select} FROM {table} WHERE ts_ms >= ? AND ts_ms <= ?",
                                           [from_ms, to_ms]).fetchnumpy())
    merged = {name: np.concatenate([stored[i], _pending(pending, name, from_ms, to_ms)])
              for i, name in enumerate(names)}
    order = np.argsort(merged["ts_ms"], kind="stable")
    return {name: values[order] for name, values in merged.items()}


def window_samples(con: Connection, pending: dict[str, np.ndarray], pending_gpu: dict[str, np.ndarray],
                   from_ms: int, to_ms: int) -> WindowSamples:
    """The samples of [from_ms, to_ms]: one read for every window inside it. A window that begins after the oldest
    row still in memory reads no table: a flush stores host and GPU rows together, oldest first, so every stored
    row is older than it (a short run's end costs no query)."""
    held = np.asarray(pending.get("ts_ms", np.empty(0)), dtype=float)
    held_only = bool(len(held)) and float(held.min()) < from_ms
    return WindowSamples(_read(con, "samples", HOST_ROW, COLUMNS, pending, from_ms, to_ms, held_only),
                         _read(con, "gpu_samples", GPU_ROW, GPU_COLUMNS, pending_gpu, from_ms, to_ms, held_only))


def _max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if len(finite) else math.nan


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _weighted_sum(values: np.ndarray, seconds: np.ndarray) -> float:
    known = np.isfinite(values) & np.isfinite(seconds)
    return float(np.sum(values[known] * seconds[known])) if known.any() else math.nan


def gpu_throttling(host: dict[str, np.ndarray], gpu: dict[str, np.ndarray]) -> tuple[float, tuple[str, ...]]:
    """(seconds the most throttled GPU was held down, the reasons seen) over the window; each GPU row lasts its
    tick's interval. NaN where no GPU gives throttle reasons."""
    times, gpus, masks = gpu["ts_ms"], gpu["gpu"], gpu["throttle_mask"]
    known = np.isfinite(masks)
    if not known.any():
        return math.nan, ()
    host_times, intervals = host["ts_ms"], np.nan_to_num(host["interval_s"])
    at = np.clip(np.searchsorted(host_times, times), 0, max(len(host_times) - 1, 0))
    seconds = intervals[at] if len(host_times) else np.zeros(len(times))
    held = known & ((np.nan_to_num(masks).astype(np.int64) & THROTTLED) != 0)
    per_gpu = [float(np.sum(seconds[held & (gpus == index)])) for index in np.unique(gpus[known])]
    seen = int(np.bitwise_or.reduce(np.nan_to_num(masks[held]).astype(np.int64))) if held.any() else 0
    return max(per_gpu, default=0.0), tuple(reason_names(seen & THROTTLED))


def _pending(pending: dict[str, np.ndarray], name: str, from_ms: int, to_ms: int) -> np.ndarray:
    values = np.asarray(pending.get(name, np.empty(0)), dtype=float)
    if not len(values):
        return values
    times = np.asarray(pending["ts_ms"], dtype=float)
    return values[(times >= from_ms) & (times <= to_ms)]


def run_conditions(con: Connection, pending: dict[str, np.ndarray], from_ms: int, to_ms: int,
                   pending_gpu: dict[str, np.ndarray] | None = None,
                   attributed: Attributed | None = None, samples: WindowSamples | None = None) -> RunConditions:
    """The conditions of [from_ms, to_ms], from ``samples`` (read for a span holding it) or read now; who had
    the CPUs from ``attributed`` (a window followed from its start in this service's life, else unknown)."""
    window = (samples or window_samples(con, pending, pending_gpu or {}, from_ms, to_ms)).slice(from_ms, to_ms)
    columns = window.host
    gpu_throttled_s, gpu_reasons = gpu_throttling(columns, window.gpu)
    seconds = columns["interval_s"]
    throttle = columns["cpu_throttle_eps"]
    known = np.isfinite(throttle)
    throttled_s = float(np.sum(seconds[known & (throttle > 0)])) if known.any() else math.nan
    return RunConditions(
        peak_cpu_temperature_c=_max(columns["cpu_temp_c"]),
        peak_gpu_temperature_c=_max(window.gpu["temp_c"]),
        cpu_throttled_s=throttled_s, cpu_frequency_pct=_mean(columns["cpu_freq_pct"]),
        swap_in_bytes=_weighted_sum(columns["swap_in_bps"], seconds), steal_pct=_mean(columns["cpu_steal_pct"]),
        cpu=cpu_shares(attributed) if attributed else CpuShares(), gpu_throttled_s=gpu_throttled_s,
        gpu_throttle_reasons=gpu_reasons,
        peak_gpu_memory_mib=attributed.peak_gpu_memory_bytes / MIB if attributed else math.nan,
        gpu_contention_pct=gpu_contention(dict(attributed.gpu_tree_use), dict(attributed.gpu_all_use))
        if attributed else {})
