"""A finished run's conditions from the samples of its window (stored, and the ring's rows not stored yet):
peak temperatures, throttled seconds, clock share, swap-in, steal; contention from its processes' CPU time
(the attributor's). Runs on the writer thread at the run's end."""

from __future__ import annotations

import math

import numpy as np

from tsstats.figures.attribution import Attributed
from tsstats.figures.fairness import MIB, RunConditions, gpu_contention
from tsstats.sources.gpu import THROTTLED, reason_names
from tsstats.storage.rows import GPU_ROW, HOST_ROW
from tsstats.storage.sql import Connection, float_columns

COLUMNS = ("ts_ms", "interval_s", "cpu_temp_c", "cpu_throttle_eps", "cpu_freq_pct", "swap_in_bps", "cpu_steal_pct")


def window_columns(con: Connection, pending: dict[str, np.ndarray], from_ms: int, to_ms: int
                   ) -> dict[str, np.ndarray]:
    """The host columns of [from_ms, to_ms] in ring units, stored rows and pending ones together."""
    select = ", ".join(HOST_ROW.sql(name) for name in COLUMNS)
    rows = con.execute(f"SELECT {select} FROM samples WHERE ts_ms >= ? AND ts_ms <= ?", [from_ms, to_ms]).fetchnumpy()
    stored = float_columns(rows)
    return {name: np.concatenate([stored[i], _pending(pending, name, from_ms, to_ms)])
            for i, name in enumerate(COLUMNS)}


def _max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if len(finite) else math.nan


def _mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _weighted_sum(values: np.ndarray, seconds: np.ndarray) -> float:
    known = np.isfinite(values) & np.isfinite(seconds)
    return float(np.sum(values[known] * seconds[known])) if known.any() else math.nan


def gpu_throttling(con: Connection, pending_gpu: dict[str, np.ndarray], host: dict[str, np.ndarray], from_ms: int,
                   to_ms: int) -> tuple[float, tuple[str, ...]]:
    """(seconds the most throttled GPU was held down, the reasons seen) over the window; each GPU row lasts its
    tick's interval. NaN where no GPU gives throttle reasons."""
    rows = con.execute(f"SELECT ts_ms, gpu, {GPU_ROW.sql('throttle_mask')} FROM gpu_samples "
                       "WHERE ts_ms >= ? AND ts_ms <= ?", [from_ms, to_ms]).fetchnumpy()
    stored = float_columns(rows)
    times, gpus, masks = (np.concatenate([stored[i], _pending(pending_gpu, name, from_ms, to_ms)])
                          for i, name in enumerate(("ts_ms", "gpu", "throttle_mask")))
    known = np.isfinite(masks)
    if not known.any():
        return math.nan, ()
    order = np.argsort(host["ts_ms"])
    host_times, intervals = host["ts_ms"][order], np.nan_to_num(host["interval_s"][order])
    at = np.clip(np.searchsorted(host_times, times), 0, max(len(host_times) - 1, 0))
    seconds = intervals[at] if len(host_times) else np.zeros(len(times))
    held = known & ((np.nan_to_num(masks).astype(np.int64) & THROTTLED) != 0)
    per_gpu = [float(np.sum(seconds[held & (gpus == gpu)])) for gpu in np.unique(gpus[known])]
    seen = int(np.bitwise_or.reduce(np.nan_to_num(masks[held]).astype(np.int64))) if held.any() else 0
    return max(per_gpu, default=0.0), tuple(reason_names(seen & THROTTLED))


def _pending(pending: dict[str, np.ndarray], name: str, from_ms: int, to_ms: int) -> np.ndarray:
    values = np.asarray(pending.get(name, np.empty(0)), dtype=float)
    if not len(values):
        return values
    times = np.asarray(pending["ts_ms"], dtype=float)
    return values[(times >= from_ms) & (times <= to_ms)]


def run_conditions(con: Connection, pending: dict[str, np.ndarray], from_ms: int, to_ms: int,
                   contention_pct: float, pending_gpu: dict[str, np.ndarray] | None = None,
                   attributed: Attributed | None = None) -> RunConditions:
    columns = window_columns(con, pending, from_ms, to_ms)
    gpu_throttled_s, gpu_reasons = gpu_throttling(con, pending_gpu or {}, columns, from_ms, to_ms)
    seconds = columns["interval_s"]
    throttle = columns["cpu_throttle_eps"]
    known = np.isfinite(throttle)
    throttled_s = float(np.sum(seconds[known & (throttle > 0)])) if known.any() else math.nan
    gpu_temp = con.execute(f"SELECT max({GPU_ROW.sql('temp_c')}) FROM gpu_samples WHERE ts_ms >= ? AND ts_ms <= ?",
                           [from_ms, to_ms]).fetchall()[0][0]
    return RunConditions(
        peak_cpu_temperature_c=_max(columns["cpu_temp_c"]),
        peak_gpu_temperature_c=float(gpu_temp) if gpu_temp is not None else math.nan,
        cpu_throttled_s=throttled_s, cpu_frequency_pct=_mean(columns["cpu_freq_pct"]),
        swap_in_bytes=_weighted_sum(columns["swap_in_bps"], seconds), steal_pct=_mean(columns["cpu_steal_pct"]),
        contention_pct=contention_pct, gpu_throttled_s=gpu_throttled_s, gpu_throttle_reasons=gpu_reasons,
        peak_gpu_memory_mib=attributed.peak_gpu_memory_bytes / MIB if attributed else math.nan,
        gpu_contention_pct=gpu_contention(dict(attributed.gpu_tree_use), dict(attributed.gpu_all_use))
        if attributed else {})
