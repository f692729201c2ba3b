"""Energy over a time range from both places samples live: stored (``storage.energy_sql``) and still held in
the sampler's ring (numpy over its columns, rounded as they will be stored, so a sum never moves when its rows
are flushed). Read from any thread: the ring hands out copies."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tsstats.figures import formulas
from tsstats.figures.energy import EnergySums
from tsstats.figures.grid import GridIntensity
from tsstats.storage.energy_sql import sample_energy, stored_sums
from tsstats.storage.rows import HOST_ROW
from tsstats.storage.sql import Connection


def memory_sums(columns: dict[str, np.ndarray], grid: GridIntensity, from_ms: float = -np.inf,
                to_ms: float = np.inf) -> EnergySums:
    """The same sums over ring rows (float64 columns) in [from_ms, to_ms), rounded as they will be stored."""
    ts = columns["ts_ms"]
    inside = (ts >= from_ms) & (ts < to_ms)
    if not inside.any():
        return EnergySums()

    def stored(name: str) -> np.ndarray:  # what the database will hold, missing as 0
        return np.nan_to_num(HOST_ROW.as_stored(name, columns[name][inside]), nan=0.0)

    cpu, gpu, mem = stored("cpu_j"), stored("gpu_j"), stored("mem_j")
    joules = cpu + gpu + mem
    g, renewable, covered = grid.lookup(ts[inside])
    methods = columns["methods"][inside].astype(np.int64)
    return EnergySums(
        float(cpu.sum()), float((cpu * stored("cpu_pct") / 100.0).sum()), float(gpu.sum()),
        float(stored("gpu_idle_j").sum()), float(mem.sum()),
        int(inside.sum()), int(np.bitwise_and.reduce(methods)), int(np.bitwise_or.reduce(methods)),
        float((joules * g).sum()), float((joules * renewable).sum()),
        int((~covered).sum()) if grid.series is not None else 0)


def covered_s(columns: dict[str, np.ndarray]) -> float:
    """Seconds the rows cover (their intervals)."""
    return float(np.nansum(columns["interval_s"]))


def energy_between(con: Connection, pending: dict[str, np.ndarray], from_ms: float, to_ms: float,
                   grid: GridIntensity) -> EnergySums:
    """Energy over [from_ms, to_ms) from stored rows and the rows still in memory (``pending``, not stored)."""
    first_pending = pending["ts_ms"][0] if len(pending["ts_ms"]) else math.inf
    return stored_sums(con, from_ms, min(to_ms, first_pending), grid) + memory_sums(pending, grid, from_ms, to_ms)


@dataclass(frozen=True)
class SharedEnergy:
    """A window's share of the samples' energy (joules before PUE) and of their carbon (joules x g/kWh)."""

    shared_j: float
    total_j: float  # every sample's energy in the window, before sharing
    joule_g_per_kwh: float

    def scaled_to(self, machine_j: float) -> SharedEnergy:
        """The same shares of the machine's energy read from its counters at the window's own edges."""
        if self.total_j <= 0:
            return self
        factor = machine_j / self.total_j
        return SharedEnergy(self.shared_j * factor, machine_j, self.joule_g_per_kwh * factor)


def comparison_energy(con: Connection, pending: dict[str, np.ndarray], start_ms: float, end_ms: float,
                      running: list[tuple[int, int, int]], grid: GridIntensity) -> SharedEnergy:
    """The energy of a window over [start_ms, end_ms]: this machine's energy then (before PUE), each sample's
    shared equally among the comparisons running then (``running``: their (id, started, finished or end)
    intervals, this one's included), each at the grid's intensity at its time; from stored samples and the rows
    still in memory."""
    ts, joules = sample_energy(con, start_ms, end_ms)
    if len(pending["ts_ms"]):
        memory_j = sum(np.nan_to_num(HOST_ROW.as_stored(name, pending[name]), nan=0.0)
                       for name in ("cpu_j", "gpu_j", "mem_j"))
        ts, joules = np.concatenate((ts, pending["ts_ms"])), np.concatenate((joules, memory_j))
    starts = np.array([row[1] for row in running], dtype=float)
    ends = np.array([row[2] for row in running], dtype=float)
    shared = formulas.shared_energy_j(ts, joules, start_ms, end_ms, starts, ends)
    inside = (ts >= start_ms) & (ts <= end_ms)
    g, _, _ = grid.lookup(ts)
    return SharedEnergy(float(shared.sum()), float(np.nansum(joules[inside])), float((shared * g).sum()))
