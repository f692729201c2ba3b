"""The sampler thread: it only schedules, at the rate that is needed (``Demand``, ``Sampler.pace``). Each job lives in
its own room, built by the assembly and handed in (``SamplerParts``): reading (``reading.TickReader``), flushing
(``flushing.Flusher``), rollups, retention, the energy ledger, clock steps (``clocks.StepMover``), publishing
(``publishing.StatsPublisher``) and the comparisons' hooks. The thread is the database's one writer: between ticks
it runs the writes queued on the store, with a time budget so that sampling keeps its rate, and the stats builds
asked for.

The rate: ``sample_hz`` while anything needs it (the stats, history or the machine's conditions asked for within
``FULL_RATE_HOLD_S``, a stream client connected, a run being measured), else ``idle_sample_hz``. The switch up is
immediate: the request or the run's write wakes the thread, which samples at once, so the stats built next see a
fresh sample; a run's window reads the energy counters at its own edges whatever the rate. Each sample keeps its own
interval (``interval_ms``), so history knows the rate of every stretch (``sampleInterval``), its energy sums are the
counters' whatever the rate, and uptime counts a gap only beyond ``max(STALL_S, 2 x the slower period)``. A flush
holds the same number of rows at either rate: every ``flush_interval`` at ``sample_hz``, every ``flush_interval x
sample_hz / idle_sample_hz`` at the idle rate (docs/operations.md: what a crash may lose).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tsstats.figures.moment import SampleRate
from tsstats.sampling.clocks import Clocks, ClockWatch, StepMover
from tsstats.sampling.energy import EnergyLedger, MachineEnergy
from tsstats.sampling.flushing import Availability, Flusher
from tsstats.sampling.footprint import Footprint
from tsstats.sampling.hooks import ComparisonHooks, run_guarded
from tsstats.sampling.publishing import StatsPublisher
from tsstats.sampling.reading import Sources, TickReader, gpu_rows
from tsstats.sampling.ring import Ring
from tsstats.storage.energy import retained_energy
from tsstats.storage.retention import RETENTION_INTERVAL_S, Retention
from tsstats.storage.rollups import Rollups
from tsstats.storage.rows import GPU_ROW, HOST_ROW, newest_sample_ms
from tsstats.storage.sql import Connection
from tsstats.storage.store import Store

log = logging.getLogger("tsstats.sampler")
STALL_S = 5.0  # longer without a sample: the sampler has stalled (health), and the gap is an outage (uptime)
FIRST_TICK_S = 0.1  # the first sample waits this long (at most) after priming: CPU use needs two readings
HOLD_S = 600.0  # samples the database cannot take (a full disk) are held in memory this long, then dropped
RETRY_EVERY_S = 2.0  # while the database cannot be written: how often to reopen it (if invalidated) and flush
ATTRIBUTE_EVERY_S = 1.0  # how often the processes that comparisons name are read
REGRID_EVERY_S = 1.0  # the most often the report window is summed afresh after grid feeds
WRITE_SHARE = 0.5  # of each sample period, at most this share runs queued writes (sampling keeps its rate)
FULL_RATE_HOLD_S = 60.0  # a request for the stats, history or conditions keeps the full rate this long


class Demand:
    """Who needs the full sample rate now, apart from the runs being measured (``ComparisonHooks.measuring``):
    a request for the stats, history or the machine's conditions within ``FULL_RATE_HOLD_S``, a stream client
    connected. The API records them (event loop); the sampler thread reads them. A request that finds the
    sampler at its idle rate wakes it, so that it samples at once."""

    def __init__(self, monotonic: Callable[[], float], wake: Callable[[], None]):
        self._monotonic = monotonic
        self._wake = wake
        self._lock = threading.Lock()
        self.asked_mono = -math.inf
        self.streams = 0
        self.idle = False  # set by the sampler thread while it samples at the idle rate

    def asked(self) -> None:
        """The stats, history or conditions were asked for: the full rate for ``FULL_RATE_HOLD_S`` from now."""
        self.asked_mono = self._monotonic()
        if self.idle:
            self._wake()

    def stream_opened(self) -> None:
        with self._lock:
            self.streams += 1
        if self.idle:
            self._wake()

    def stream_closed(self) -> None:
        with self._lock:
            self.streams = max(0, self.streams - 1)

    def reasons(self, now: float) -> list[str]:
        """Why the full rate is needed at ``now`` (monotonic), besides runs: ``asked``, ``stream``."""
        return (["asked"] if now - self.asked_mono < FULL_RATE_HOLD_S else []) + (["stream"] if self.streams else [])


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


@dataclass
class SamplerParts:
    """The rooms of the sampler thread."""

    ring: Ring
    gpu_ring: Ring
    rollups: Rollups
    ledger: EnergyLedger
    availability: Availability
    clock_watch: ClockWatch
    flusher: Flusher
    retention: Retention
    reader: TickReader
    steps: StepMover
    publisher: StatsPublisher
    comparisons: ComparisonHooks
    energy: MachineEnergy
    footprint: Footprint


@dataclass(frozen=True)
class Schedule:
    """How often the sampler does what (built by the assembly from the settings): seconds, and Hz for the rate."""

    sample_hz: float
    idle_sample_hz: float  # at most sample_hz
    flush_interval_s: float
    checkpoint_interval_s: float
    current_window_s: float
    report_window_s: float
    availability_window_s: float

    @property
    def slow_period_s(self) -> float:
        return 1.0 / min(self.idle_sample_hz, self.sample_hz)

    def stall_s(self, period_s: float) -> float:
        """Longer than this without a sample at ``period_s``: stalled (health), and the gap is an outage."""
        return max(STALL_S, 2 * period_s)


def ring_capacity(schedule: Schedule) -> int:
    """Rows the ring holds: a flush's worth many times over, and what a full disk holds back (``HOLD_S``)."""
    return max(int(schedule.sample_hz * max(HOLD_S, 4 * schedule.flush_interval_s, schedule.current_window_s)), 64)


class Sampler:
    def __init__(self, schedule: Schedule, store: Store, sources: Sources, parts: SamplerParts, clocks: Clocks,
                 wake: threading.Event, demand: Demand):
        """``wake`` is set by the store when a write is queued, by the publisher when stats are asked for, and by
        ``demand`` when the full rate is needed while sampling at the idle rate."""
        self.schedule = schedule
        self.store = store
        self.sources = sources
        self.parts = parts
        self.clocks = clocks
        self.full_period_s = 1.0 / schedule.sample_hz
        self.period_s = self.full_period_s  # the rate now; start() sets it from the demand
        self.demand = demand
        self.full_because: tuple[str, ...] = ()
        self._flush = Every(schedule.flush_interval_s, math.inf)
        self._next_tick = 0.0
        # the energy window's lower edge moves in steps of at most 1/2000 of the window (5 s to 60 s)
        self.figures_interval_s = min(max(schedule.report_window_s / 2000.0, 5.0), 60.0)
        self.last_tick_mono: float | None = None
        self._wake = wake
        parts.steps.reload = self.moved  # a step back undone while sampling: reload what came from the rows
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tsstats-sampler", daemon=True)

    # -- life cycle ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load what the figures need, close buckets a crash left open, prime the readers (no thread)."""
        parts, store, con = self.parts, self.store, self.store.writer
        now_ms = self.clocks.wall() * 1000.0
        parts.rollups.load(con)
        parts.steps.undo_while_stopped(con, now_ms, self.clocks.monotonic())
        parts.availability.load(store, now_ms, self.schedule.availability_window_s)
        last = newest_sample_ms(con)
        if last is None and parts.rollups.minutes_until is not None:
            last = float(parts.rollups.minutes_until)
        parts.flusher.last_flushed_ms = last
        parts.availability.restarted_after_ms, parts.availability.max_gap_ms = last, parts.flusher.max_gap_ms
        if last is not None:
            parts.rollups.close(store, max(now_ms, last))
        self.reload_energy(con)
        parts.comparisons.load(con, now_ms)
        parts.reader.prime(last)

    def reload_energy(self, con: Connection) -> None:
        """Sum the ledger afresh from the stored rows (at start, and after rows were moved)."""
        rollups = self.parts.rollups
        self.parts.ledger.load(con, self.clocks.wall() * 1000.0,
                               retained_energy(con, rollups.hours_until, rollups.minutes_until))

    def start(self) -> None:
        """Load state, take the first sample and build the first stats, then start the latency monitor and the
        thread: once this returns, the stats route has a body to answer with."""
        self.prepare()
        self.clocks.sleep(min(self.full_period_s, FIRST_TICK_S))
        self.tick()
        self.parts.publisher.build()
        self.sources.latency.start()
        self.parts.publisher.serving = True
        self._thread.start()

    def stop(self) -> int:
        """Refuse new writes, stop the thread (it runs those already queued), flush, checkpoint. Returns how
        many samples could not be written (0: everything taken is stored)."""
        self.store.stop_writes()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.parts.publisher.stop()
        try:
            self.store.reopen()  # only when a failure invalidated it
            self.parts.flusher.flush()
            self.store.checkpoint()
        except Exception as error:  # the file may be gone or full: say so, do not hang the shutdown
            log.error("final flush failed: %s", error)
        return len(self.parts.ring.pending())

    @property
    def stalled(self) -> bool:
        last = self.last_tick_mono
        return last is None or self.clocks.monotonic() - last > self.schedule.stall_s(self.period_s)

    @property
    def flush_interval_s(self) -> float:
        """Seconds between flushes at the rate now: as many rows a flush at either rate."""
        return self._flush.interval_s

    def rate(self) -> SampleRate:
        """The rate now and why (any thread)."""
        return SampleRate(1.0 / self.period_s, self.schedule.sample_hz, 1.0 / self.schedule.slow_period_s,
                          self.full_because)

    def pace(self, now: float) -> None:
        """Sample at the rate needed now: up at once (a sample taken now), down once nothing needs the full rate.
        A flush holds the same number of rows at either rate."""
        self.demand.idle = True  # from here on a request wakes the thread; cleared below while the full rate is due
        because = self.demand.reasons(now) + (["measuring"] if self.parts.comparisons.measuring else [])
        self.full_because = tuple(because)
        period = self.full_period_s if because else self.schedule.slow_period_s
        self.demand.idle = period > self.full_period_s
        if period == self.period_s:
            return
        faster = period < self.period_s
        self.period_s = period
        flush_s = self.schedule.flush_interval_s * period / self.full_period_s
        self._flush.interval_s = flush_s
        if faster:
            self._flush.next_s = min(self._flush.next_s, now + flush_s)
            self.guarded(self.tick, "sampler tick")  # the stats built next see a sample of now
            self._next_tick = now + period
        else:
            self._flush.next_s += flush_s - self.schedule.flush_interval_s  # from the last flush
            self._next_tick = (self.last_tick_mono or now) + period

    # -- the loop: scheduling only -------------------------------------------------------------------
    def _run(self) -> None:
        schedule, mono, parts = self.schedule, self.clocks.monotonic, self.parts
        footprint = parts.footprint
        now = mono()
        self._next_tick = now + self.period_s
        flush = self._flush
        flush.next_s = now + schedule.flush_interval_s
        self.pace(now)
        energy = Every(self.figures_interval_s, now + self.figures_interval_s)
        retention = Every(RETENTION_INTERVAL_S, now + RETENTION_INTERVAL_S)
        checkpoint = Every(schedule.checkpoint_interval_s, now + schedule.checkpoint_interval_s)
        retry = Every(RETRY_EVERY_S, now)
        attribution = Every(ATTRIBUTE_EVERY_S, now + ATTRIBUTE_EVERY_S)
        regrid = Every(REGRID_EVERY_S, now)
        while not self._stop.is_set():
            self._wake.wait(max(0.0, self._next_tick - mono()))
            self._wake.clear()
            self.pace(mono())
            if self.run_writes(budget_s=self.full_period_s * WRITE_SHARE):
                self.pace(mono())  # a write may have started a run
            footprint.timed("stats", parts.publisher.run_requested)
            now = mono()
            if now < self._next_tick:
                continue
            self.guarded(self.tick, "sampler tick")
            self._next_tick += self.period_s
            if self._next_tick < now:  # fell behind (suspend, overload): skip, never burst
                self._next_tick = now + self.period_s
            if attribution.due(now) and (parts.comparisons.follows_processes or parts.comparisons.waiting):
                self.housekeeping(self.attribute, "attributing energy to processes")
            if flush.due(now) or (self.store.failure is not None and retry.due(now)):
                self.flush()
            if parts.ledger.window_stale and regrid.due(now):  # grid rows changed: at most once a second
                self.housekeeping(lambda: parts.ledger.reload_window(self.store.writer, self.clocks.wall() * 1000.0),
                                  "summing the energy window at the grid's new rows")
            if energy.due(now):
                self.housekeeping(lambda: parts.ledger.advance(self.store.writer, self.clocks.wall() * 1000.0),
                                  "refreshing the energy window")
            if retention.due(now):
                wait_s, checkpoint_now = footprint.timed(
                    "housekeeping", lambda: parts.retention.due_pass(self.clocks.wall() * 1000.0))
                retention.next_s = now + wait_s
                if checkpoint_now:
                    checkpoint.next_s = now  # give the freed blocks back now that the backlog is done
            if checkpoint.due(now):
                self.housekeeping(self.store.checkpoint, "checkpoint")
        self.run_writes()  # answer what is still queued so that no request waits forever

    def guarded(self, job: Callable[[], object], what: str) -> None:
        run_guarded(self.store, job, what)

    def housekeeping(self, job: Callable[[], object], what: str) -> None:
        """A job besides sampling, writing and the stats (its CPU time is the footprint's ``housekeeping``)."""
        self.parts.footprint.timed("housekeeping", lambda: self.guarded(job, what))

    # -- the rooms' entry points -------------------------------------------------------------------
    def tick(self) -> None:
        """Read once into the rings."""
        self.parts.footprint.timed("ticks", self._tick)

    def _tick(self) -> None:
        parts = self.parts
        tick = parts.reader.read()
        parts.ring.append(HOST_ROW.row(tick.host))
        for row in gpu_rows(tick):
            parts.gpu_ring.append(GPU_ROW.row(row))
        parts.energy.ticked(tick.mono, tick.host["cpu_pct"], tick.power, parts.footprint.ticked(tick))
        parts.availability.sampled(tick.host["ts_ms"])
        self.last_tick_mono = tick.mono

    def attribute(self) -> None:
        """Give the processes followed their share; close the windows of the runs whose processes have all exited,
        and fail those whose report did not come within report_grace."""
        comparisons, now_ms = self.parts.comparisons, self.clocks.wall() * 1000.0
        exited = comparisons.attribute(now_ms) if comparisons.follows_processes else []
        if exited or comparisons.overdue(now_ms):
            try:
                self.store.transaction(lambda con: comparisons.settle(con, exited, now_ms))
            except BaseException:
                self._rolled_back()
                raise
            self._written(self.store.writer)

    def flush(self) -> None:
        """Write what the rings hold, and what the processes followed have been given."""
        self.parts.footprint.timed("flush", self._write_held)

    def _write_held(self) -> None:
        comparisons = self.parts.comparisons
        self.guarded(self.store.reopen, "reopening the database")  # only when a failure invalidated it
        self.parts.flusher.flush()
        if comparisons.follows_processes:
            self.guarded(lambda: self.store.transaction(comparisons.save),
                         "saving the energy attributed to processes")

    def moved(self, con: Connection) -> None:
        """Rows were moved by a clock step: reload what was computed from them."""
        self.reload_energy(con)
        self.parts.comparisons.changed()
        self.parts.publisher.invalidate()

    def run_writes(self, budget_s: float | None = None) -> int:
        """Run the writes queued on the store (returns how many ran); after each, what it changed of comparisons
        counts, and the stats are built afresh when next asked for."""
        return self.parts.footprint.timed("writes", lambda: self.store.run_writes(budget_s, committed=self._written,
                                                                                  rolled_back=self._rolled_back))

    def _written(self, con: Connection) -> None:
        self.parts.comparisons.committed()
        self.parts.publisher.invalidate()

    def _rolled_back(self) -> None:
        self.parts.comparisons.rolled_back()

    def pending_columns(self) -> dict[str, np.ndarray]:
        """The sample rows not yet stored, by ring column (any thread)."""
        return self.parts.ring.pending_columns()

    def pending_gpu_columns(self) -> dict[str, np.ndarray]:
        """The per-GPU rows not yet stored, by ring column (any thread)."""
        return self.parts.gpu_ring.pending_columns()
