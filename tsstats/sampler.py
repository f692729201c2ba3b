"""The sampler thread: reads every tick into the ring, flushes batches, refreshes the figures and the
served snapshot, and is the only writer to the database (API writes are handed to it as commands)."""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import comparisons as cmp
from . import figures
from .catalog import energy_expression
from .energy import EnergySums, EnergyWindow, memory_sums, stored_sums
from .grid import Grid
from .meter import PowerMeter
from .request_stats import RequestStats
from .ring import Ring
from .rollups import Rollups, enforce_retention, enforce_size_cap, retained_energy
from .rows import GPU_ROW, HOST_ROW
from .snapshot import SlowFigures, build_stats
from .sources.host import HostReader, cpu_busy_pct
from .sources.latency import LatencyMonitor
from .sources.nvml import NvmlReader
from .store import Store, first

log = logging.getLogger("tsstats.sampler")

RETENTION_INTERVAL_S = 60.0
SLOW_READ_S = 1.0  # memory, load and TCP counts: read once a second, carried to the ticks between
RETENTION_BACKLOG_S = 1.0  # while a backlog lasts: an hour of each table a second
STALL_S = 5.0
FIRST_TICK_S = 0.1  # the first sample waits this long (at most) after priming: CPU use needs two readings


@dataclass
class Clocks:
    """The clocks the sampler reads: monotonic for intervals, wall for timestamps."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


@dataclass
class Sources:
    host: HostReader
    gpu: NvmlReader
    meter: PowerMeter
    latency: LatencyMonitor
    grid: Grid


@dataclass(frozen=True)
class Snapshot:
    body: bytes
    data: dict[str, Any]
    version: int
    built_mono: float  # when it was built, on the monotonic clock


@dataclass
class Health:
    last_tick_mono: float | None = None
    last_flush_ok: bool = True
    last_flush_error: str = ""
    lost_rows: int = 0
    flushes: int = 0


def write_batch(store: Store, rollups: Rollups, columns: dict[str, np.ndarray],
                gpu_columns: dict[str, np.ndarray] | None = None, gaps: np.ndarray | None = None,
                first_sample_ms: float | None = None) -> None:
    """The one write path of samples (the sampler's flushes and ``tsstats synth``): one transaction with the
    samples, per-GPU samples, outages, the first sample's time, and the rollup buckets that closed. When
    only samples are due, their single appender flush commits on its own (the same transaction, cheaper)."""
    gpu_rows = len(gpu_columns["ts_ms"]) if gpu_columns else 0
    gaps = gaps if gaps is not None else np.empty((0, 2))
    last_ts = float(columns["ts_ms"][-1])
    if not (len(gaps) or gpu_rows or first_sample_ms is not None or rollups.due(last_ts)):
        store.insert_rows(HOST_ROW, columns)
        return

    def write(con) -> None:
        store.insert_rows(HOST_ROW, columns)
        if gpu_rows:
            store.insert_rows(GPU_ROW, gpu_columns)
        for start, end in gaps:
            con.execute("INSERT INTO outages VALUES (?, ?)", [int(start), int(end)])
        if first_sample_ms is not None:
            con.execute("INSERT OR REPLACE INTO schema_meta VALUES ('first_sample_ms', ?)",
                        [repr(float(first_sample_ms))])
        rollups.close_buckets(con, last_ts, float(columns["ts_ms"][0]))

    store.transaction(write)


class Sampler:
    def __init__(self, settings, store: Store, sources: Sources, requests: RequestStats,
                 clocks: Clocks | None = None):
        self.settings = settings
        self.store = store
        self.sources = sources
        self.requests = requests
        self.clocks = clocks or Clocks()
        self.period_s = 1.0 / settings.sample_hz
        # the energy window's lower edge moves in steps of at most 1/2000 of the window (5 s to 60 s)
        self.figures_interval_s = min(max(settings.report_window / 2000.0, 5.0), 60.0)
        capacity = max(int(settings.sample_hz * max(60.0, 4 * settings.flush_interval, settings.current_window)),
                       64)
        self.ring = Ring(HOST_ROW.names, capacity)
        gpus = max(len(sources.gpu.gpus), 1)
        self.gpu_ring = Ring(GPU_ROW.names, capacity * gpus)
        self._commands: queue.Queue = queue.Queue()  # (work, future); work None: build the stats snapshot
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tsstats-sampler", daemon=True)
        self.health = Health()
        self.snapshot: Snapshot | None = None
        self._snapshot_version = 0
        self.snapshot_expires = 0.0  # monotonic time after which the snapshot is due; 0 after a write
        self._update_interval = settings.update_interval
        self._build_lock = threading.Lock()
        self._build_future: Future | None = None
        self._prev_cpu = None
        self._prev_mono: float | None = None
        self._last_ts_ms: float | None = None
        self._first_sample_ms: float | None = None
        self._outages = np.empty((0, 2))
        self._comparison_stats: dict[str, float] = {}
        self._finished: list[figures.FinishedComparison] = []
        self._offsets_kg = 0.0
        self._totals = {"cpu_j": 0.0, "gpu_j": 0.0, "mem_j": 0.0, "covered_s": 0.0}
        self._energy = EnergyWindow(settings.report_window * 1000.0)
        self._last_gpu: list = []
        self.rollups = Rollups()
        self._last_flushed_ms: float | None = None
        self._first_written = False
        self._retention_dirty = False

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Load state, take the first sample and build the first stats, then start the latency monitor and the
        sampler thread: once this returns, the stats route has a body to answer with."""
        self.prepare()
        self.clocks.sleep(min(self.period_s, FIRST_TICK_S))
        self.tick()
        self.build_snapshot()
        self.sources.latency.start()
        self._thread.start()

    def prepare(self) -> None:
        """Load what the figures need from the database, close buckets a crash left open, prime the readers
        (no thread started)."""
        con = self.store.writer
        now_ms = self.clocks.wall() * 1000.0
        stored_first = self.store.get_meta("first_sample_ms")
        self._first_sample_ms = float(stored_first) if stored_first is not None else None
        self._first_written = stored_first is not None
        self.rollups.load(con)
        last = first(con.execute("SELECT max(ts_ms) FROM samples").fetchall())[0]
        if last is None and self.rollups.minutes_until is not None:
            last = self.rollups.minutes_until
        self._last_ts_ms = self._last_flushed_ms = float(last) if last is not None else None
        if self._last_ts_ms is not None:
            self.store.transaction(lambda c: self.rollups.close_buckets(c, max(now_ms, self._last_ts_ms)))
        window_start = now_ms - self.settings.availability_window * 1000.0
        rows = con.execute("SELECT start_ms, end_ms FROM outages WHERE end_ms >= ? ORDER BY start_ms",
                           [int(window_start)]).fetchall()
        self._outages = np.array(rows, dtype=float).reshape(-1, 2)
        self._totals = retained_energy(con, self.rollups.hours_until, self.rollups.minutes_until)
        self._energy.load(con, now_ms)
        self._refresh_comparisons(con)
        self._offsets_kg = cmp.offsets_total(con)
        self._prime()

    def stop(self) -> None:
        """Stop the thread, flush what is buffered, checkpoint."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.sources.latency.stop()
        try:
            self.flush()
            self.store.checkpoint()
        except Exception as error:  # the file may be gone or full: say so, do not hang the shutdown
            log.error("final flush failed: %s", error)
        self.sources.gpu.stop()
        self.sources.host.close()
        self.sources.meter.rapl.close()

    def submit(self, work: Callable[[Any], Any]) -> Future:
        """Run ``work(connection)`` on the sampler thread, the only writer; the future holds its result."""
        future: Future = Future()
        if self._stop.is_set():
            future.set_exception(RuntimeError("the sampler is stopping"))
            return future
        self._commands.put((work, future))
        return future

    def snapshot_due(self) -> bool:
        """Whether the served stats need building: none yet, changed by a write, or older than update_interval
        (the request path reads ``snapshot_expires`` itself: it is cheaper)."""
        return self.snapshot is None or self.clocks.monotonic() >= self.snapshot_expires

    def fresh_snapshot(self) -> Future:
        """A future of stats no older than update_interval, built on the sampler thread if due. Callers at the
        same time share one build; nobody asking means no build at all."""
        with self._build_lock:
            if self._build_future is not None:
                return self._build_future
            if not self.snapshot_due() or self._stop.is_set() or not self._thread.is_alive():
                done: Future = Future()
                done.set_result(self.snapshot)
                return done
            future = self._build_future = Future()
        self._commands.put((None, future))
        return future

    @property
    def stalled(self) -> bool:
        last = self.health.last_tick_mono
        return last is None or self.clocks.monotonic() - last > STALL_S

    # -- the loop -----------------------------------------------------------------------------------
    def _prime(self) -> None:
        reading = self.sources.host.read_fast()
        self._prev_cpu = reading.cpu
        self._prev_mono = self.clocks.monotonic()
        self._slow_reading = self.sources.host.read_slow()
        self._slow_mono = self._prev_mono
        self._net_rates = (math.nan, math.nan)  # no rate before the second reading

    def _run(self) -> None:
        settings = self.settings
        mono = self.clocks.monotonic
        next_tick = mono() + self.period_s
        next_flush = mono() + settings.flush_interval
        next_figures = mono() + self.figures_interval_s
        next_checkpoint = mono() + settings.checkpoint_interval
        next_retention = mono() + RETENTION_INTERVAL_S
        while not self._stop.is_set():
            try:
                work, future = self._commands.get(timeout=max(0.0, next_tick - mono()))
            except queue.Empty:
                pass
            else:
                self._run_command(work, future)
                continue
            now = mono()
            try:
                self.tick()
            except Exception:
                log.exception("sampler tick failed")
            next_tick += self.period_s
            if next_tick < now:  # fell behind (suspend, overload): skip, never burst
                next_tick = now + self.period_s
            if now >= next_flush:
                next_flush = now + settings.flush_interval
                self.flush()
            if now >= next_figures:
                next_figures = now + self.figures_interval_s
                self.refresh_figures()
            if now >= next_retention:
                try:
                    busy = self.enforce_retention() > 0
                except Exception as error:
                    busy = False
                    log.error("retention failed: %s", error)
                next_retention = now + (RETENTION_BACKLOG_S if busy else RETENTION_INTERVAL_S)
                if not busy and self._retention_dirty:
                    next_checkpoint = now  # give the freed blocks back now that the backlog is done
                    self._retention_dirty = False
            if now >= next_checkpoint:
                next_checkpoint = now + settings.checkpoint_interval
                try:
                    self.store.checkpoint()
                except Exception as error:
                    log.error("checkpoint failed: %s", error)
        # answer what is still queued so that no request waits forever
        while True:
            try:
                work, future = self._commands.get_nowait()
            except queue.Empty:
                break
            self._run_command(work, future)

    def _run_command(self, work, future: Future) -> None:
        if work is None:
            self._run_build(future)
            return
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = work(self.store.writer)
        except BaseException as error:
            future.set_exception(error)
            return
        try:
            self._refresh_comparisons(self.store.writer)
            self._offsets_kg = cmp.offsets_total(self.store.writer)
        except Exception:
            log.exception("refresh after a write failed")
        self.snapshot_expires = 0.0
        future.set_result(result)

    def _run_build(self, future: Future) -> None:
        try:
            snapshot = self.build_snapshot() if self.snapshot_due() else self.snapshot
        except Exception:
            log.exception("building the stats failed")
            snapshot = self.snapshot
        with self._build_lock:
            if self._build_future is future:
                self._build_future = None
        if future.set_running_or_notify_cancel():
            future.set_result(snapshot)

    def tick(self) -> None:
        sources = self.sources
        mono_now = self.clocks.monotonic()
        wall_ms = self.clocks.wall() * 1000.0
        interval = mono_now - self._prev_mono if self._prev_mono is not None else 0.0
        self._prev_mono = mono_now
        if self._last_ts_ms is not None and wall_ms <= self._last_ts_ms:
            # the wall clock went backwards: keep rows in order, advance by the monotonic interval
            wall_ms = self._last_ts_ms + max(interval * 1000.0, 1.0)
        reading = sources.host.read_fast()
        # levels and network counters are read once a second; the ticks between carry the latest reading
        # (repeated values cost next to nothing in DuckDB's run-length encoding, NULLs would not)
        if mono_now - self._slow_mono >= SLOW_READ_S:
            previous, elapsed = self._slow_reading, mono_now - self._slow_mono
            slow = self._slow_reading = sources.host.read_slow()
            self._slow_mono = mono_now
            self._net_rates = (max(slow.net_rx_bytes - previous.net_rx_bytes, 0) / elapsed,
                               max(slow.net_tx_bytes - previous.net_tx_bytes, 0) / elapsed)
        slow = self._slow_reading
        mem, load1, tcp = slow.memory_used_pct, slow.load1, slow.tcp_established
        rx_bps, tx_bps = self._net_rates
        cpu = cpu_busy_pct(self._prev_cpu, reading.cpu)
        self._prev_cpu = reading.cpu
        gpus = sources.gpu.read() if sources.gpu.gpus else []
        power = sources.meter.measure(interval, cpu, gpus)
        utilizations = [g.utilization_pct for g in gpus if g.ok and math.isfinite(g.utilization_pct)]
        gpu_pct = float(np.mean(utilizations)) if utilizations else math.nan
        self.ring.append(HOST_ROW.row({
            "ts_ms": wall_ms, "interval_s": interval, "cpu_pct": cpu, "mem_pct": mem, "load1": load1,
            "logical_cpus": reading.logical_cpus, "tcp_estab": tcp, "rx_bps": rx_bps, "tx_bps": tx_bps,
            "gpu_pct": gpu_pct, "latency_ms": sources.latency.take_fresh(), "cpu_j": power.cpu_j,
            "gpu_j": power.gpu_j, "gpu_idle_j": power.gpu_idle_j, "mem_j": power.mem_j, "methods": power.methods,
        }))
        for reading_gpu in gpus:
            self.gpu_ring.append(GPU_ROW.row({
                "ts_ms": wall_ms, "gpu": reading_gpu.index, "util_pct": reading_gpu.utilization_pct,
                "mem_used_bytes": reading_gpu.memory_used_bytes, "power_w": reading_gpu.power_w,
                "temp_c": reading_gpu.temperature_c}))
        self._last_gpu = gpus
        self._last_ts_ms = wall_ms
        if self._first_sample_ms is None:
            self._first_sample_ms = wall_ms
        self.health.last_tick_mono = mono_now

    # -- flush --------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write what is buffered in one transaction, with the buckets that closed (sampler thread only)."""
        rows, lost = self.ring.drain()
        gpu_rows, _ = self.gpu_ring.drain()
        if lost:
            self.health.lost_rows += lost
            log.warning("%d samples were overwritten before they could be written", lost)
        if not len(rows):
            return
        columns = self.ring.columns_of(rows)
        gpu_columns = self.gpu_ring.columns_of(gpu_rows)
        gaps = figures.find_gaps(columns["ts_ms"], self._last_flushed_ms, 2 * self.period_s * 1000.0)
        batch = memory_sums(columns)
        interval_s = float(np.nansum(columns["interval_s"]))
        last_ts = float(columns["ts_ms"][-1])
        first_needed = self._first_sample_ms is not None and self._first_written is False
        rollup_state = (self.rollups.minutes_until, self.rollups.hours_until)
        try:
            write_batch(self.store, self.rollups, columns, gpu_columns, gaps,
                        self._first_sample_ms if first_needed else None)
        except Exception as error:
            self.rollups.minutes_until, self.rollups.hours_until = rollup_state
            self.ring.undrain(len(rows))
            self.gpu_ring.undrain(len(gpu_rows))
            self.health.last_flush_ok = False
            self.health.last_flush_error = str(error)
            log.error("writing %d samples failed (kept in memory for the next try): %s", len(rows), error)
            return
        self._first_written = self._first_written or first_needed
        self._last_flushed_ms = last_ts
        self.health.last_flush_ok = True
        self.health.last_flush_error = ""
        self.health.flushes += 1
        self._totals = self._batch_totals(batch, interval_s)
        self._energy.add_sums(batch, columns["ts_ms"])
        if len(gaps):
            self._outages = np.vstack((self._outages, gaps))

    def enforce_retention(self) -> int:
        """One bounded pass of retention, then of the size cap (sampler thread only); returns rows deleted."""
        now_ms = self.clocks.wall() * 1000.0
        deleted = self.store.transaction(
            lambda con: enforce_retention(con, self.settings, now_ms, self.rollups.minutes_until))
        if self.settings.max_db_mb is not None:
            capped = self.store.transaction(
                lambda con: enforce_size_cap(con, self.settings.max_db_mb * 1e6, self.rollups.minutes_until))
            if capped:
                self.store.checkpoint()  # freed blocks count only once checkpointed: measure after that
                log.info("database over %g MB: deleted the %d oldest rows", self.settings.max_db_mb, capped)
            deleted += capped
        if deleted:
            self._retention_dirty = True
        return deleted

    def _batch_totals(self, batch: EnergySums, interval_s: float) -> dict[str, float]:
        totals = self._totals
        return {"cpu_j": totals["cpu_j"] + batch.cpu_j, "gpu_j": totals["gpu_j"] + batch.gpu_j,
                "mem_j": totals["mem_j"] + batch.mem_j, "covered_s": totals["covered_s"] + interval_s}

    def energy_totals(self, pending: EnergySums | None = None) -> dict[str, float]:
        """Joules by component over everything retained, rows in memory (``pending``) included, before PUE."""
        if pending is None:
            pending = memory_sums(self.ring.columns_of(self.ring.pending()))
        return {"cpu": self._totals["cpu_j"] + pending.cpu_j, "gpu": self._totals["gpu_j"] + pending.gpu_j,
                "memory": self._totals["mem_j"] + pending.mem_j}

    # -- figures ------------------------------------------------------------------------------------
    def _refresh_comparisons(self, con) -> None:
        self._comparison_stats = cmp.comparison_stats(con)
        since_ms = self.clocks.wall() * 1000.0 - self.settings.activity_window * 1000.0
        self._finished = cmp.finished_since(con, since_ms)

    def refresh_figures(self) -> None:
        now_ms = self.clocks.wall() * 1000.0
        try:
            self._energy.advance(self.store.writer, now_ms)
        except Exception as error:
            log.error("refreshing the energy window failed: %s", error)
        cutoff = now_ms - self.settings.activity_window * 1000.0
        self._finished = [item for item in self._finished if item.finished_ms > cutoff]

    def energy_between(self, con, from_ms: float, to_ms: float) -> EnergySums:
        """Energy over [from_ms, to_ms) from stored rows and rows still in memory (any thread, own cursor)."""
        pending = self.ring.columns_of(self.ring.pending())
        first_pending = pending["ts_ms"][0] if len(pending["ts_ms"]) else math.inf
        stored = stored_sums(con, from_ms, min(to_ms, first_pending))
        return stored + memory_sums(pending, from_ms, to_ms)

    def comparison_energy_j(self, con, comparison_id: int, start_ms: float, end_ms: float) -> float:
        """This machine's energy over [start_ms, end_ms], shared equally among the comparisons running at
        each sample; the comparison must still be running in the database (it is finished afterwards)."""
        found = con.execute(
            f"SELECT ts_ms, {energy_expression('total_j', True)} AS j "
            "FROM samples WHERE ts_ms BETWEEN ? AND ? ORDER BY ts_ms", [int(start_ms), int(end_ms)]).fetchnumpy()
        intervals = cmp.running_intervals(con, int(start_ms), int(end_ms))
        starts = np.array([row[1] for row in intervals], dtype=float)
        ends = np.array([row[2] for row in intervals], dtype=float)
        return figures.attributed_energy_j(np.asarray(found["ts_ms"], dtype=float),
                                           np.asarray(found["j"], dtype=float), start_ms, end_ms, starts, ends)

    def _slow_figures(self, now_ms: float) -> SlowFigures:
        pending = memory_sums(self.ring.columns_of(self.ring.pending()))  # recent: inside the window
        window = self._energy.sums + pending
        uptime = figures.uptime_pct(now_ms, self._first_sample_ms, self.settings.availability_window * 1000.0,
                                    self._outages)
        return SlowFigures(window=window, uptime_pct=uptime, offsets_kg=self._offsets_kg,
                           total_energy_j=sum(self.energy_totals(pending).values()),
                           total_covered_s=self._totals["covered_s"])

    def build_snapshot(self) -> Snapshot | None:
        """Build the stats body from the ring and the slow figures (sampler thread, or before it starts)."""
        now_wall = self.clocks.wall()
        window = self.ring.since(now_wall * 1000.0 - self.settings.current_window * 1000.0)
        if not len(window):
            window = self.ring.latest(1)
        if not len(window):
            return self.snapshot
        columns = self.ring.columns_of(window)
        data = build_stats(
            settings=self.settings,
            now_s=now_wall,
            current=columns,
            latency_ms=self.sources.latency.median_ms(),
            latency_source=self.sources.latency.reader.name,
            slow=self._slow_figures(now_wall * 1000.0),
            comparisons=self._comparison_stats,
            activity=figures.comparison_activity(self._finished, now_wall * 1000.0,
                                                 self.settings.activity_window * 1000.0),
            service=self.requests.summary(),
            grid=self.sources.grid,
            meter=self.sources.meter,
            gpu=self.sources.gpu,
            gpu_readings=self._last_gpu,
        )
        self._snapshot_version += 1
        body = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
        built = self.clocks.monotonic()
        self.snapshot = Snapshot(body=body, data=data, version=self._snapshot_version, built_mono=built)
        self.snapshot_expires = built + self._update_interval
        return self.snapshot
