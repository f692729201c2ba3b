"""Energy accounting, in one place: sums over stored samples and over rows still in memory, the sliding
report window, the retained totals behind the Prometheus counters, the PUE and carbon step, and the
attribution of energy to comparisons.

The ``EnergyLedger`` hands a flushed batch from "in memory" to "stored" under one lock, at the same moment
the ring marks it flushed, so a reader never sees the batch in neither place (a dip, which Prometheus reads as
a counter reset) nor in both.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

import numpy as np

from . import figures
from .catalog import ENERGY_SUMS, energy_expression
from .meter import METHOD_CPU_RAPL, METHOD_GPU_ENERGY, METHOD_GPU_POWER, METHOD_MEM_RAPL
from .ring import Ring
from .rows import HOST_ROW
from .store import first

_SUMMED = ("cpu_j", "cpu_active_j", "gpu_j", "gpu_idle_j", "mem_j")  # EnergySums' fields, in order
_SUMS_SQL = (
    "SELECT " + ", ".join(f"coalesce(sum({dict(ENERGY_SUMS)[name]}), 0)" for name in _SUMMED)
    + ", count(*), coalesce(bit_and(methods), 0), coalesce(bit_or(methods), 0) "
    "FROM samples WHERE ts_ms >= ? AND ts_ms < ?"
)


@dataclass(frozen=True)
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
    joule_g: float = 0.0  # sum of each row's joules x the grid's g/kWh at its time
    joule_renewable: float = 0.0  # sum of each row's joules x the renewable share (%) at its time
    outside: int = 0  # rows outside the grid's rows over time (at the yearly average)

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.gpu_j + self.mem_j

    def g_per_kwh(self, default: float) -> float:
        """The intensity of this energy: per sample, weighted by its joules (``default`` with no energy)."""
        return self.joule_g / self.total_j if self.total_j > 0 else default

    def renewable_pct(self, default: float) -> float:
        return self.joule_renewable / self.total_j if self.total_j > 0 else default

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
                          self.methods_any | other.methods_any, self.joule_g + other.joule_g,
                          self.joule_renewable + other.joule_renewable, self.outside + other.outside)

    def __sub__(self, other: EnergySums) -> EnergySums:
        return EnergySums(self.cpu_j - other.cpu_j, self.cpu_active_j - other.cpu_active_j,
                          self.gpu_j - other.gpu_j, self.gpu_idle_j - other.gpu_idle_j, self.mem_j - other.mem_j,
                          self.rows - other.rows, self.methods_all, self.methods_any, self.joule_g - other.joule_g,
                          self.joule_renewable - other.joule_renewable, self.outside - other.outside)


@dataclass(frozen=True)
class Totals:
    """Joules by component and seconds covered over everything retained, before PUE."""

    cpu_j: float = 0.0
    gpu_j: float = 0.0
    mem_j: float = 0.0
    covered_s: float = 0.0

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.gpu_j + self.mem_j

    def plus(self, sums: EnergySums, covered_s: float) -> Totals:
        return Totals(self.cpu_j + sums.cpu_j, self.gpu_j + sums.gpu_j, self.mem_j + sums.mem_j,
                      self.covered_s + covered_s)

    def by_component(self) -> dict[str, float]:
        return {"cpu": self.cpu_j, "gpu": self.gpu_j, "memory": self.mem_j}


@dataclass(frozen=True)
class EnergyReport:
    """Energy after PUE and its emissions: what the API reports for an interval."""

    cpu_kwh: float
    gpu_kwh: float
    memory_kwh: float
    g_per_kwh: float

    @property
    def total_kwh(self) -> float:
        return self.cpu_kwh + self.gpu_kwh + self.memory_kwh

    @property
    def carbon_kg(self) -> float:
        return figures.carbon_kg(self.total_kwh, self.g_per_kwh)

    @property
    def carbon_g(self) -> float:
        return figures.carbon_g(self.total_kwh, self.g_per_kwh)


def report(sums: EnergySums | Totals, pue: float, g_per_kwh: float) -> EnergyReport:
    """The PUE and carbon step: joules before PUE -> kWh after PUE, with the grid's intensity."""
    return EnergyReport(figures.kwh(sums.cpu_j * pue), figures.kwh(sums.gpu_j * pue), figures.kwh(sums.mem_j * pue),
                        g_per_kwh)


_TOTAL_J = energy_expression("total_j", True)
_IN_FORCE = "CASE WHEN s.ts_ms < g.end_ms THEN g.{} END"
_SUMS_GRID_SQL = (
    "SELECT " + ", ".join(f"coalesce(sum({dict(ENERGY_SUMS)[name]}), 0)" for name in _SUMMED)
    + ", count(*), coalesce(bit_and(methods), 0), coalesce(bit_or(methods), 0), "
    f"coalesce(sum(({_TOTAL_J}) * coalesce({_IN_FORCE.format('g_per_kwh')}, $g)), 0), "
    f"coalesce(sum(({_TOTAL_J}) * coalesce({_IN_FORCE.format('renewable_pct')}, $r)), 0), "
    "count(*) FILTER (WHERE g.end_ms IS NULL OR s.ts_ms >= g.end_ms) "
    "FROM samples s ASOF LEFT JOIN grid_intensity g ON s.ts_ms >= g.start_ms "
    "WHERE s.ts_ms >= $from AND s.ts_ms < $to"
)


def stored_sums(con, from_ms: float, to_ms: float, grid) -> EnergySums:
    """Sums over stored samples in [from_ms, to_ms), with the carbon of each at the grid's intensity then."""
    if grid.series is None:  # one intensity for all: no join
        row = first(con.execute(_SUMS_SQL, [int(from_ms), int(to_ms)]).fetchall())
        *joules, rows, methods_all, methods_any = row
        sums = EnergySums(*(float(value) for value in joules), rows, int(methods_all) if rows else 0xFF,
                          int(methods_any))
        return replace(sums, joule_g=sums.total_j * grid.g_per_kwh, joule_renewable=sums.total_j * grid.renewable_pct)
    row = first(con.execute(_SUMS_GRID_SQL, {"from": int(from_ms), "to": int(to_ms), "g": grid.g_per_kwh,
                                             "r": grid.renewable_pct}).fetchall())
    *joules, rows, methods_all, methods_any, joule_g, joule_renewable, outside = row
    return EnergySums(*(float(value) for value in joules), rows, int(methods_all) if rows else 0xFF,
                      int(methods_any), float(joule_g), float(joule_renewable), int(outside))


def memory_sums(columns: dict[str, np.ndarray], grid, from_ms: float = -np.inf,
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


def energy_between(con, pending: dict[str, np.ndarray], from_ms: float, to_ms: float, grid) -> EnergySums:
    """Energy over [from_ms, to_ms) from stored rows and the rows still in memory (``pending``, not stored)."""
    first_pending = pending["ts_ms"][0] if len(pending["ts_ms"]) else math.inf
    return stored_sums(con, from_ms, min(to_ms, first_pending), grid) + memory_sums(pending, grid, from_ms, to_ms)


def comparison_energy(con, pending: dict[str, np.ndarray], start_ms: float, end_ms: float,
                      running: list[tuple[int, int, int]], pue: float, grid) -> tuple[float, float]:
    """(kWh after PUE, kg CO2e) of a comparison that ran over [start_ms, end_ms]: this machine's energy then
    (before PUE), each sample's shared equally among the comparisons running then (``running``: their (id,
    started, finished or end) intervals, this one's included), each at the grid's intensity at its time; from
    stored samples and the rows still in memory."""
    found = con.execute(f"SELECT ts_ms, {energy_expression('total_j', True)} AS j FROM samples "
                        "WHERE ts_ms BETWEEN ? AND ? ORDER BY ts_ms", [int(start_ms), int(end_ms)]).fetchnumpy()
    ts = np.asarray(found["ts_ms"], dtype=float)
    joules = np.asarray(found["j"], dtype=float)
    if len(pending["ts_ms"]):
        memory_j = sum(np.nan_to_num(HOST_ROW.as_stored(name, pending[name]), nan=0.0)
                       for name in ("cpu_j", "gpu_j", "mem_j"))
        ts, joules = np.concatenate((ts, pending["ts_ms"])), np.concatenate((joules, memory_j))
    starts = np.array([row[1] for row in running], dtype=float)
    ends = np.array([row[2] for row in running], dtype=float)
    shared = figures.shared_energy_j(ts, joules, start_ms, end_ms, starts, ends)
    g, _, _ = grid.lookup(ts)
    grams = float((shared * g).sum()) * pue / 3.6e6  # joules x g/kWh -> g
    return figures.kwh(float(shared.sum()) * pue), grams / 1000.0


class EnergyWindow:
    """Stored sums over a sliding window [now - span, now), kept up to date without rescanning history.

    New batches are added as they are flushed; rows that slide out of the window are subtracted with a
    range query over just those rows (zone maps keep it to the few row groups concerned).
    """

    def __init__(self, span_ms: float):
        self.span_ms = span_ms
        self.lower_ms: float | None = None
        self.sums = EnergySums()

    def load(self, con, now_ms: float, grid) -> None:
        self.lower_ms = now_ms - self.span_ms
        self.sums = stored_sums(con, self.lower_ms, 2 ** 62, grid)

    def add_sums(self, sums: EnergySums, ts_ms: np.ndarray) -> None:
        """Add the sums of a flushed batch (rows are recent: inside the window but for a restart's first)."""
        if self.lower_ms is None or len(ts_ms) == 0 or ts_ms[0] >= self.lower_ms:
            self.sums = self.sums + sums

    def slid_out(self, con, now_ms: float, grid) -> tuple[EnergySums, float] | None:
        """The stored sums that slide out when the window ends at ``now_ms``, and the new lower edge."""
        new_lower = now_ms - self.span_ms
        if self.lower_ms is None or new_lower <= self.lower_ms:
            return None
        return stored_sums(con, self.lower_ms, new_lower, grid), new_lower

    def slide(self, slid: EnergySums, new_lower: float) -> None:
        self.sums = self.sums - slid
        self.lower_ms = new_lower


@dataclass(frozen=True)
class LedgerView:
    """The ledger read at one moment: stored and in-memory energy together."""

    window: EnergySums  # the report window
    totals: Totals  # everything retained


class EnergyLedger:
    """The report window and the retained totals, each stored part plus the ring's unflushed rows."""

    def __init__(self, ring: Ring, window_ms: float, grid):
        """``grid``: the ``grid.GridIntensity`` each sample's carbon is taken at."""
        self.ring = ring
        self.window = EnergyWindow(window_ms)
        self.totals = Totals()
        self.grid = grid
        self._lock = threading.Lock()

    def load(self, con, now_ms: float, totals: Totals) -> None:
        with self._lock:
            self.totals = totals
            self.window.load(con, now_ms, self.grid)

    def reload_window(self, con, now_ms: float) -> None:
        """Sum the report window afresh (the grid's rows over time changed)."""
        window = EnergyWindow(self.window.span_ms)
        window.load(con, now_ms, self.grid)
        with self._lock:
            self.window = window

    def stored(self, columns: dict[str, np.ndarray], flushed_upto: int) -> None:
        """A batch of ring rows has been committed: move it from memory to the stored sums, and mark it
        flushed in the ring, in one step for readers."""
        batch = memory_sums(columns, self.grid)
        with self._lock:
            self.totals = self.totals.plus(batch, covered_s(columns))
            self.window.add_sums(batch, columns["ts_ms"])
            self.ring.mark_flushed(flushed_upto)

    def advance(self, con, now_ms: float) -> None:
        """Slide the window's lower edge to ``now - span`` (a query over the rows that slid out, outside the
        lock: only the writer thread stores rows)."""
        slid = self.window.slid_out(con, now_ms, self.grid)
        if slid is not None:
            with self._lock:
                self.window.slide(*slid)

    def view(self) -> LedgerView:
        with self._lock:
            pending_columns = self.ring.columns_of(self.ring.pending())
            pending = memory_sums(pending_columns, self.grid)
            return LedgerView(window=self.window.sums + pending,
                              totals=self.totals.plus(pending, covered_s(pending_columns)))
