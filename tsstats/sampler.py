"""The sampler thread: it only schedules. Each job lives in its own room: reading (``reading.TickReader``),
flushing (``flushing.Flusher``), rollups (``rollups.Rollups``), retention (``retention.Retention``), energy
(``energy.EnergyLedger``), comparisons (``comparisons.ComparisonTracker``) and publishing
(``publishing.StatsPublisher``). The thread is the database's one writer: between ticks it runs the writes
queued on the store, with a time budget so that sampling keeps its rate, and the stats builds asked for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from . import clocksteps
from .attribution import ATTRIBUTE_EVERY_S, Attributor
from .clocksteps import ClockWatch
from .comparisons import ComparisonTracker, running_with_pids, save_attribution
from .dashboard import dashboard_body
from .energy import EnergyLedger
from .flushing import Availability, Flusher
from .grid import GridIntensity
from .publishing import StatsPublisher
from .reading import Clocks, Sources, TickReader, gpu_rows
from .request_stats import RequestStats
from .retention import RETENTION_INTERVAL_S, Retention
from .ring import Ring
from .rollups import Rollups, retained_energy
from .rows import GPU_ROW, HOST_ROW
from .snapshot import Figures, compute_figures
from .sources.processes import open_trees
from .store import Store, first
from .timeparse import rfc3339_ms

log = logging.getLogger("tsstats.sampler")
STALL_S = 5.0  # longer without a sample: the sampler has stalled (health), and the gap is an outage (uptime)
FIRST_TICK_S = 0.1  # the first sample waits this long (at most) after priming: CPU use needs two readings
HOLD_S = 600.0  # samples the database cannot take (a full disk) are held in memory this long, then dropped
RETRY_EVERY_S = 2.0  # while the database cannot be written: how often to reopen it (if invalidated) and flush


@dataclass
class Every:
    """A job due every ``interval_s`` seconds of the monotonic clock."""

    interval_s: float
    next_s: float

    def due(self, now: float) -> bool:
        if now < self.next_s:
            return False
        self.next_s = now + self.interval_s
        return True


class Sampler:
    def __init__(self, settings, store: Store, sources: Sources, grid: GridIntensity, requests: RequestStats,
                 clocks: Clocks | None = None, wake: threading.Event | None = None):
        self.settings = settings
        self.store = store
        self.sources = sources
        self.grid = grid
        self.requests = requests
        self.clocks = clocks or Clocks()
        self.period_s = 1.0 / settings.sample_hz
        capacity = max(int(settings.sample_hz * max(HOLD_S, 4 * settings.flush_interval, settings.current_window)),
                       64)
        self.ring = Ring(HOST_ROW.names, capacity)
        self.gpu_ring = Ring(GPU_ROW.names, capacity * max(len(sources.gpu.gpus), 1))
        self.rollups = Rollups()
        self.ledger = EnergyLedger(self.ring, settings.report_window * 1000.0, grid)
        self.availability = Availability()
        self.clock_watch = ClockWatch()
        self.flusher = Flusher(store, self.rollups, self.ring, self.gpu_ring, self.ledger, self.availability,
                               max_gap_ms=max(2 * self.period_s, STALL_S) * 1000.0, clock_watch=self.clock_watch)
        self.retention = Retention(settings, store, lambda: self.rollups.minutes_until)
        self.comparisons = ComparisonTracker(settings.activity_window)
        self.attributor = Attributor(open_trees(settings.proc_root), sources.gpu, grid.intensity_at)
        self.reader = TickReader(sources, self.clocks, self.clock_watch, self._step_back)
        self._wake = wake or threading.Event()  # set by the store when a write is queued, and for builds
        self.publisher = StatsPublisher(settings.update_interval, self.clocks.monotonic, self.compute_figures,
                                        lambda figures: dashboard_body(figures, settings), self._wake.set)
        # the energy window's lower edge moves in steps of at most 1/2000 of the window (5 s to 60 s)
        self.figures_interval_s = min(max(settings.report_window / 2000.0, 5.0), 60.0)
        self.last_tick_mono: float | None = None
        self._move_failure = ""  # why rows stamped ahead could not be moved, once said
        self.last_gpu: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tsstats-sampler", daemon=True)

    # -- life cycle ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load what the figures need, close buckets a crash left open, prime the readers (no thread)."""
        store, con = self.store, self.store.writer
        now_ms = self.clocks.wall() * 1000.0
        self.rollups.load(con)
        self._undo_step_while_stopped(con, now_ms)
        self.availability.load(store, now_ms, self.settings.availability_window)
        last = first(con.execute("SELECT max(ts_ms) FROM samples").fetchall())[0]
        if last is None:
            last = self.rollups.minutes_until
        last = float(last) if last is not None else None
        self.flusher.last_flushed_ms = last
        if last is not None:
            self.rollups.close(store, max(now_ms, last))
        self.ledger.load(con, now_ms, retained_energy(con, self.rollups.hours_until, self.rollups.minutes_until))
        self.comparisons.refresh(con, now_ms)
        for comparison_id, (pids, given) in running_with_pids(con).items():
            self.attributor.track(comparison_id, pids, given)
        self.reader.prime(last)

    def start(self) -> None:
        """Load state, take the first sample and build the first stats, then start the latency monitor and the
        thread: once this returns, the stats route has a body to answer with."""
        self.prepare()
        self.clocks.sleep(min(self.period_s, FIRST_TICK_S))
        self.tick()
        self.publisher.build()
        self.sources.latency.start()
        self.publisher.serving = True
        self._thread.start()

    def stop(self) -> int:
        """Refuse new writes, stop the thread (it runs those already queued), flush, checkpoint. Returns how
        many samples could not be written (0: everything taken is stored)."""
        self.store.stop_writes()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.publisher.stop()
        try:
            self.store.reopen()  # only when a failure invalidated it
            self.flusher.flush()
            self.store.checkpoint()
        except Exception as error:  # the file may be gone or full: say so, do not hang the shutdown
            log.error("final flush failed: %s", error)
        return len(self.ring.pending())

    @property
    def stalled(self) -> bool:
        last = self.last_tick_mono
        return last is None or self.clocks.monotonic() - last > STALL_S

    # -- the loop: scheduling only -------------------------------------------------------------------
    def _run(self) -> None:
        settings, mono = self.settings, self.clocks.monotonic
        now = mono()
        next_tick = now + self.period_s
        flush = Every(settings.flush_interval, now + settings.flush_interval)
        energy = Every(self.figures_interval_s, now + self.figures_interval_s)
        retention = Every(RETENTION_INTERVAL_S, now + RETENTION_INTERVAL_S)
        checkpoint = Every(settings.checkpoint_interval, now + settings.checkpoint_interval)
        retry = Every(RETRY_EVERY_S, now)
        attribution = Every(ATTRIBUTE_EVERY_S, now + ATTRIBUTE_EVERY_S)
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_tick - mono()))
            self._wake.clear()
            self.run_writes(budget_s=self.period_s / 2)
            self.publisher.run_requested()
            now = mono()
            if now < next_tick:
                continue
            self._guarded(self.tick, "sampler tick")
            next_tick += self.period_s
            if next_tick < now:  # fell behind (suspend, overload): skip, never burst
                next_tick = now + self.period_s
            if attribution.due(now) and self.attributor.tracked:
                self._guarded(lambda: self.attributor.attribute(self.clocks.wall() * 1000.0),
                              "attributing energy to processes")
            if flush.due(now) or (self.store.failure is not None and retry.due(now)):
                self._guarded(self.store.reopen, "reopening the database")  # only when a failure invalidated it
                self.flusher.flush()
                if self.attributor.tracked:
                    self._guarded(self._save_attribution, "saving the energy attributed to processes")
            if energy.due(now):
                self._guarded(self.refresh_figures, "refreshing the energy window")
            if retention.due(now):
                wait_s, checkpoint_now = self.retention.due_pass(self.clocks.wall() * 1000.0)
                retention.next_s = now + wait_s
                if checkpoint_now:
                    checkpoint.next_s = now  # give the freed blocks back now that the backlog is done
            if checkpoint.due(now):
                self._guarded(self.store.checkpoint, "checkpoint")
        self.run_writes()  # answer what is still queued so that no request waits forever

    def _guarded(self, job: Callable[[], None], what: str) -> None:
        try:
            job()
        except Exception as error:
            if self.store.failure is not None:  # the store has said why; the job runs again once it recovers
                log.warning("%s failed while the database cannot be used: %s", what, str(error).splitlines()[0])
            else:
                log.exception("%s failed", what)

    # -- the rooms' entry points -------------------------------------------------------------------
    def tick(self) -> None:
        """Read once into the rings."""
        tick = self.reader.read()
        self.ring.append(HOST_ROW.row(tick.host))
        for row in gpu_rows(tick):
            self.gpu_ring.append(GPU_ROW.row(row))
        self.last_gpu = tick.gpus
        self.attributor.add_tick(tick.host, tick.gpus)
        self.availability.sampled(tick.host["ts_ms"])
        self.last_tick_mono = tick.mono

    def _undo_step_while_stopped(self, con, now_ms: float) -> None:
        """Rows stamped ahead of the wall clock (it stepped back while the service was stopped) are moved back;
        else the saved clock segment carries on if this is the same boot."""
        saved = clocksteps.load_segment(con)
        newest = first(con.execute("SELECT max(ts_ms) FROM samples").fetchall())[0]
        mono = self.clocks.monotonic()
        step = clocksteps.step_at_start(None if newest is None else float(newest), now_ms, mono, saved,
                                        self.clock_watch.boot, self.period_s * 1000.0)
        if step is None:
            self.clock_watch.resume(saved)
        elif self._move_rows(step, reload=False):
            self.clock_watch.moved(step, now_ms - mono * 1000.0)

    def _step_back(self, step: clocksteps.StepBack) -> bool:
        """The wall clock stepped back while sampling: move what was stamped ahead (a tick's callback)."""
        return self._move_rows(step, reload=True)

    def _move_rows(self, step: clocksteps.StepBack, reload: bool) -> bool:
        try:
            tiers = self.store.transaction(lambda con: clocksteps.move_rows(con, step, self.rollups.state))
        except Exception as error:
            if str(error) != self._move_failure:  # said once, not every tick it is tried again
                log.error("the wall clock stepped back %.3f s; moving the rows stamped since %s failed (tried "
                          "again every tick): %s", -step.shift_ms / 1000.0, rfc3339_ms(int(step.since_ms)), error)
            self._move_failure = str(error)
            return False
        self._move_failure = ""
        log.warning("the wall clock stepped back %.3f s: moved the rows stamped since %s by that much",
                    -step.shift_ms / 1000.0, rfc3339_ms(int(step.since_ms)))
        self.rollups.commit(tiers)
        self.ring.shift_times(step.since_ms, step.shift_ms)
        self.gpu_ring.shift_times(step.since_ms, step.shift_ms)
        self.availability.shift_times(step.since_ms, step.shift_ms)
        last = self.flusher.last_flushed_ms
        if last is not None and last >= step.since_ms:
            self.flusher.last_flushed_ms = last + step.shift_ms
        if reload:
            con, now_ms = self.store.writer, self.clocks.wall() * 1000.0
            self.ledger.load(con, now_ms, retained_energy(con, self.rollups.hours_until, self.rollups.minutes_until))
            self.comparisons.changed()
            self.publisher.invalidate()
        return True

    def _save_attribution(self) -> None:
        given = {comparison_id: tracked.attributed for comparison_id, tracked in self.attributor.tracked.items()}
        self.store.transaction(lambda con: save_attribution(con, given))

    def run_writes(self, budget_s: float | None = None) -> None:
        """Run the writes queued on the store; after each, what the stats show of comparisons is reloaded."""
        self.store.run_writes(budget_s, committed=self._written)

    def _written(self, con) -> None:
        self.comparisons.changed()
        self.publisher.invalidate()

    def refresh_figures(self) -> None:
        now_ms = self.clocks.wall() * 1000.0
        self.ledger.advance(self.store.writer, now_ms)

    def pending_columns(self):
        """The sample rows not yet stored, by ring column (any thread)."""
        return self.ring.columns_of(self.ring.pending())

    def compute_figures(self) -> Figures:
        settings = self.settings
        now_s = self.clocks.wall()
        now_ms = now_s * 1000.0
        window = self.ring.since(now_ms - settings.current_window * 1000.0)
        if not len(window):
            window = self.ring.latest(1)
        self._guarded(lambda: self.comparisons.refresh(self.store.writer, now_ms),
                      "reloading comparisons (the stats show the last ones loaded)")
        return compute_figures(
            settings=settings, now_s=now_s, current=self.ring.columns_of(window),
            latency_ms=self.sources.latency.median_ms(), latency_source=self.sources.latency.reader.name,
            system_source=self.sources.host.name,
            ledger=self.ledger.view(), uptime_pct=self.availability.uptime_pct(now_ms, settings.availability_window),
            offsets_kg=self.comparisons.offsets_kg, comparisons=self.comparisons.counts,
            activity=self.comparisons.activity, service=self.requests.summary(), grid=self.grid,
            meter=self.sources.meter, gpu=self.sources.gpu, gpu_readings=self.last_gpu)
