"""Energy sums over stored samples and the rows still in memory, with the methods that measured them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import ENERGY_SUMS
from .meter import METHOD_CPU_RAPL, METHOD_GPU_ENERGY, METHOD_GPU_POWER, METHOD_MEM_RAPL
from .rows import HOST_ROW
from .store import first

_SUMMED = ("cpu_j", "cpu_active_j", "gpu_j", "gpu_idle_j", "mem_j")  # EnergySums' fields, in order
_SUMS_SQL = (
    "SELECT " + ", ".join(f"coalesce(sum({dict(ENERGY_SUMS)[name]}), 0)" for name in _SUMMED)
    + ", count(*), coalesce(bit_and(methods), 0), coalesce(bit_or(methods), 0) "
    "FROM samples WHERE ts_ms >= ? AND ts_ms < ?"
)


@dataclass
class EnergySums:
    """Energy in joules by component, as stored (before PUE), and the method bits seen."""

    cpu_j: float = 0.0
    cpu_active_j: float = 0.0
    gpu_j: float = 0.0
    gpu_idle_j: float = 0.0
    mem_j: float = 0.0
    rows: int = 0
    methods_all: int = 0xFF  # bits set in every row
    methods_any: int = 0  # bits set in some row

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.gpu_j + self.mem_j

    def methods(self) -> int:
        """CPU and memory count as metered only if every row was; GPU methods if any row used them."""
        if self.rows == 0:
            return 0
        metered = self.methods_all & (METHOD_CPU_RAPL | METHOD_MEM_RAPL)
        return metered | (self.methods_any & (METHOD_GPU_ENERGY | METHOD_GPU_POWER))

    def __add__(self, other: EnergySums) -> EnergySums:
        return EnergySums(self.cpu_j + other.cpu_j, self.cpu_active_j + other.cpu_active_j,
                          self.gpu_j + other.gpu_j, self.gpu_idle_j + other.gpu_idle_j, self.mem_j + other.mem_j,
                          self.rows + other.rows,
                          (self.methods_all & other.methods_all) if other.rows else self.methods_all,
                          self.methods_any | other.methods_any)

    def __sub__(self, other: EnergySums) -> EnergySums:
        return EnergySums(self.cpu_j - other.cpu_j, self.cpu_active_j - other.cpu_active_j,
                          self.gpu_j - other.gpu_j, self.gpu_idle_j - other.gpu_idle_j, self.mem_j - other.mem_j,
                          self.rows - other.rows, self.methods_all, self.methods_any)


def stored_sums(con, from_ms: float, to_ms: float) -> EnergySums:
    row = first(con.execute(_SUMS_SQL, [int(from_ms), int(to_ms)]).fetchall())
    *joules, rows, methods_all, methods_any = row
    return EnergySums(*(float(value) for value in joules), rows, int(methods_all) if rows else 0xFF,
                      int(methods_any))


def memory_sums(columns: dict[str, np.ndarray], from_ms: float = -np.inf, to_ms: float = np.inf) -> EnergySums:
    """The same sums over ring rows (float64 columns) in [from_ms, to_ms), rounded as they will be stored."""
    ts = columns["ts_ms"]
    inside = (ts >= from_ms) & (ts < to_ms)
    if not inside.any():
        return EnergySums()

    def stored(name: str) -> np.ndarray:  # what the database will hold, missing as 0
        return np.nan_to_num(HOST_ROW.as_stored(name, columns[name][inside]), nan=0.0)

    cpu = stored("cpu_j")
    methods = columns["methods"][inside].astype(np.int64)
    return EnergySums(
        float(cpu.sum()), float((cpu * stored("cpu_pct") / 100.0).sum()), float(stored("gpu_j").sum()),
        float(stored("gpu_idle_j").sum()), float(stored("mem_j").sum()),
        int(inside.sum()), int(np.bitwise_and.reduce(methods)), int(np.bitwise_or.reduce(methods)))


class EnergyWindow:
    """Sums over a sliding window [now - span, now), kept up to date without rescanning history.

    New batches are added as they are flushed; rows that slide out of the window are subtracted with a
    range query over just those rows (zone maps keep it to the few row groups concerned).
    """

    def __init__(self, span_ms: float):
        self.span_ms = span_ms
        self.lower_ms: float | None = None
        self.sums = EnergySums()

    def load(self, con, now_ms: float) -> None:
        self.lower_ms = now_ms - self.span_ms
        self.sums = stored_sums(con, self.lower_ms, 2 ** 62)

    def add_sums(self, sums: EnergySums, ts_ms: np.ndarray) -> None:
        """Add the sums of a flushed batch (rows are recent: inside the window but for a restart's first)."""
        if self.lower_ms is None or len(ts_ms) == 0 or ts_ms[0] >= self.lower_ms:
            self.sums = self.sums + sums

    def advance(self, con, now_ms: float) -> None:
        new_lower = now_ms - self.span_ms
        if self.lower_ms is None:
            self.load(con, now_ms)
            return
        if new_lower > self.lower_ms:
            self.sums = self.sums - stored_sums(con, self.lower_ms, new_lower)
            self.lower_ms = new_lower
