"""The machine's energy as the sampler keeps it, in one place:

- over a time range, from both places samples live: stored (``storage.energy``) and still held in the
  sampler's ring (numpy over its columns, rounded as they will be stored, so a sum never moves when its rows
  are flushed), and a comparison's share of it (``comparison_energy``); read from any thread, the ring hands
  out copies;
- the ledger (``EnergyLedger``): the sliding report window and the retained totals behind the Prometheus
  counters, each its stored part plus the ring's unflushed rows. It hands a flushed batch from "in memory" to
  "stored" under one lock, at the same moment the ring marks it flushed, so a reader never sees the batch in
  neither place (a dip, which Prometheus reads as a counter reset) nor in both. The sampler thread writes it,
  any thread reads it;
- since the service started, by component (``MachineEnergy``): summed tick by tick, and readable at any instant
  between ticks from the counters themselves (sampler thread, which is also the writer thread where comparisons
  open and close their windows): a window that opens and closes between two ticks still gets the counters' own
  difference, ``now()`` adding to the sum at the last tick what RAPL and NVML's energy counter have moved since
  (or, without a counter, the power model over the time since), without moving the marks the next tick
  measures from;
- the grid's rows over time put in force (``GridFeed``): the file's rows at start-up, and a live feed's rows
  written (or removed) on the writer thread, after which the series in force and the report window's carbon are
  reloaded.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from tsstats.figures import formulas
from tsstats.figures.energy import EnergySums, MachineJoules, Totals
from tsstats.figures.grid import GridIntensity, GridRow, GridSeries, last_end_ms
from tsstats.sampling.meter import PowerMeter, PowerSample
from tsstats.sampling.ring import Ring
from tsstats.sources.gpu import GpuReader
from tsstats.storage.energy import load_series, log_unusable, remove_rows, replace_rows, sample_energy, stored_sums
from tsstats.storage.rows import HOST_ROW
from tsstats.storage.sql import Connection
from tsstats.storage.store import Store


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


class EnergyWindow:
    """Stored sums over a sliding window [now - span, now), kept up to date without rescanning history.

    New batches are added as they are flushed; rows that slide out of the window are subtracted with a
    range query over just those rows (zone maps keep it to the few row groups concerned).
    """

    def __init__(self, span_ms: float):
        self.span_ms = span_ms
        self.lower_ms: float | None = None
        self.sums = EnergySums()

    def load(self, con: Connection, now_ms: float, grid: GridIntensity) -> None:
        self.lower_ms = now_ms - self.span_ms
        self.sums = stored_sums(con, self.lower_ms, 2 ** 62, grid)

    def add_sums(self, sums: EnergySums, ts_ms: np.ndarray) -> None:
        """Add the sums of a flushed batch (rows are recent: inside the window but for a restart's first)."""
        if self.lower_ms is None or len(ts_ms) == 0 or ts_ms[0] >= self.lower_ms:
            self.sums = self.sums + sums

    def slid_out(self, con: Connection, now_ms: float, grid: GridIntensity) -> tuple[EnergySums, float] | None:
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

    def __init__(self, ring: Ring, window_ms: float, grid: GridIntensity):
        """``grid``: the intensity each sample's carbon is taken at."""
        self.ring = ring
        self.window = EnergyWindow(window_ms)
        self.totals = Totals()
        self.grid = grid
        self.window_stale = False  # the grid's rows over the window changed since it was summed
        self._lock = threading.Lock()

    def load(self, con: Connection, now_ms: float, totals: Totals) -> None:
        with self._lock:
            self.totals = totals
            self.window.load(con, now_ms, self.grid)

    def mark_window_stale(self) -> None:
        """The grid's rows over the window changed: the sampler sums it afresh (``reload_window``) at most once
        a second however many feeds came, so that a flood of them cannot hold the writer thread."""
        self.window_stale = True

    def reload_window(self, con: Connection, now_ms: float) -> None:
        """Sum the report window afresh (the grid's rows over time changed)."""
        self.window_stale = False
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

    def advance(self, con: Connection, now_ms: float) -> None:
        """Slide the window's lower edge to ``now - span`` (a query over the rows that slid out, outside the
        lock: only the writer thread stores rows)."""
        slid = self.window.slid_out(con, now_ms, self.grid)
        if slid is not None:
            with self._lock:
                self.window.slide(*slid)

    def view(self) -> LedgerView:
        with self._lock:
            pending_columns = self.ring.pending_columns()
            pending = memory_sums(pending_columns, self.grid)
            return LedgerView(window=self.window.sums + pending,
                              totals=self.totals.plus(pending, covered_s(pending_columns)))


class MachineEnergy:
    def __init__(self, meter: PowerMeter, gpu: GpuReader, monotonic: Callable[[], float]):
        self.meter = meter
        self.gpu = gpu
        self.monotonic = monotonic
        self._sum = MachineJoules()
        self._last_mono: float | None = None
        self._last_cpu_pct = math.nan

    def ticked(self, mono_s: float, cpu_pct: float, power: PowerSample, service_j: float = 0.0) -> None:
        """A tick's energy, and what the service itself used of it (writer thread)."""
        self._sum = self._sum + MachineJoules(finite_or_zero(power.cpu_j), finite_or_zero(power.mem_j),
                                              {index: finite_or_zero(j) for index, j in power.gpu_each_j.items()},
                                              service_j)
        self._last_mono, self._last_cpu_pct = mono_s, cpu_pct

    def at_last_tick(self) -> MachineJoules:
        return self._sum

    def now(self) -> MachineJoules:
        """The energy up to this instant (reads the counters, and the GPUs when there are some)."""
        if self._last_mono is None:
            return self._sum
        readings = self.gpu.read() if self.gpu.gpus else []
        return self._sum + self.meter.peek(self.monotonic() - self._last_mono, self._last_cpu_pct, readings)


def finite_or_zero(value: float) -> float:
    """A reading, or 0 for none (NaN)."""
    return value if math.isfinite(value) else 0.0


def install_file_rows(store: Store, grid: GridIntensity, file_rows: list[GridRow] | None) -> None:
    """The file's rows replace the file rows stored before (none without a file); the feed's stay (at start-up,
    before the sampler thread runs)."""
    def write(con: Connection) -> None:
        con.execute("DELETE FROM grid_intensity WHERE source = 'file'")
        if file_rows:
            replace_rows(con, file_rows, "file")
    store.transaction(write)
    log_unusable(store.writer)
    grid.series = load_series(store.writer)


@dataclass(frozen=True)
class GridRemoval:
    removed: int  # rows
    series: GridSeries | None  # what is in force after


class GridFeed:
    def __init__(self, store: Store, grid: GridIntensity, ledger: EnergyLedger, wall: Callable[[], float]):
        self.store = store
        self.grid = grid
        self.ledger = ledger
        self.wall = wall

    def feed(self, rows: list[GridRow]) -> Future[None]:
        """Store a live feed's rows (they replace what they overlap), then carry on with them; resolves once
        committed and in force."""
        def write(con: Connection) -> GridSeries | None:
            replace_rows(con, rows, "feed")
            return load_series(con)

        changed_to_ms = last_end_ms([row.start_ms for row in rows])
        return self.store.write(write, then=lambda con, series: self._in_force(series, changed_to_ms))

    def remove(self, from_ms: int, to_ms: int) -> Future[GridRemoval]:
        """Remove the rows (of either source) that start in [from_ms, to_ms); resolves once committed and the
        rest in force."""
        def write(con: Connection) -> GridRemoval:
            removed = remove_rows(con, from_ms, to_ms)
            return GridRemoval(removed, load_series(con))

        return self.store.write(write, then=lambda con, done: self._in_force(done.series, to_ms))

    def _in_force(self, series: GridSeries | None, changed_to_ms: float) -> None:
        """The rows in force from now; the report window is summed afresh within a second (coalesced, on the
        writer thread) if the rows changed reach into it."""
        self.grid.series = series
        if changed_to_ms > self.wall() * 1000.0 - self.ledger.window.span_ms:
            self.ledger.mark_window_stale()  # summed afresh within a second, shown by the next build
