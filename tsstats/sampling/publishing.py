"""The served stats: built on demand, when someone asks and the last ones are older than update_interval or
changed by a write. Nobody polling means no building. Builds run on the writer thread (which owns the state
they read); callers at the same time share one build.

``CurrentFigures``: the figures of now, from what the sampler holds in memory (built on the sampler thread, on
demand), which the served stats are made of.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from tsstats.core.units import MS_PER_S
from tsstats.figures.grid import GridIntensity
from tsstats.figures.moment import (
    Accounting,
    Figures,
    FigureWindows,
    FootprintNow,
    RequestSummary,
    SampleRate,
    compute_figures,
)
from tsstats.sampling.clocks import Clocks
from tsstats.sampling.energy import EnergyLedger
from tsstats.sampling.flushing import Availability
from tsstats.sampling.hooks import ComparisonHooks, run_guarded
from tsstats.sampling.meter import current_methods
from tsstats.sampling.reading import Sources, TickReader
from tsstats.sampling.ring import Ring
from tsstats.storage.store import Store

log = logging.getLogger("tsstats.publishing")

FAILED_BUILDS_UNHEALTHY = 3  # builds failed in a row after which /healthz says unhealthy


@dataclass(frozen=True)
class Snapshot:
    figures: Figures
    body: bytes  # the dashboard's JSON
    version: int  # builds since start
    built_mono: float  # when it was built, on the monotonic clock


class StatsPublisher:
    def __init__(self, update_interval: float, monotonic: Callable[[], float], compute: Callable[[], Figures],
                 render: Callable[[Figures], bytes], wake: Callable[[], None]):
        self.update_interval = update_interval
        self.monotonic = monotonic
        self.compute = compute
        self.render = render
        self.wake = wake  # wakes the writer thread, which runs ``run_requested``
        self.snapshot: Snapshot | None = None
        self.expires = 0.0  # monotonic time after which the snapshot is due; 0 after a write
        self._lock = threading.Lock()
        self._requested: Future | None = None
        self.serving = False  # whether the writer thread runs: else requests get the current snapshot
        self.failures = 0  # builds that failed in a row (the last snapshot is served meanwhile)
        self.last_failure = ""  # why the last failed build failed

    def due(self) -> bool:
        return self.snapshot is None or self.monotonic() >= self.expires

    def invalidate(self) -> None:
        """What the stats show has changed (a write): the next request builds afresh."""
        self.expires = 0.0

    def build(self) -> Snapshot:
        """Build now (writer thread, or before it starts)."""
        figures = self.compute()
        built = self.monotonic()
        version = self.snapshot.version + 1 if self.snapshot else 1
        self.snapshot = Snapshot(figures, self.render(figures), version, built)
        self.expires = built + self.update_interval
        return self.snapshot

    def request(self) -> Future:
        """A future of stats no older than update_interval, built by the writer thread if due."""
        with self._lock:
            if self._requested is not None:
                return self._requested
            if not self.due() or not self.serving:
                done: Future = Future()
                done.set_result(self.snapshot)
                return done
            future = self._requested = Future()
        self.wake()
        return future

    def run_requested(self) -> None:
        """Build for the callers waiting, if any (writer thread)."""
        future = self._requested
        if future is None:
            return
        try:
            snapshot = self.build() if self.due() else self.snapshot
        except Exception as error:
            snapshot = self._failed(error)
        else:
            if self.failures:
                log.warning("the stats are built again, after %d failed builds", self.failures)
            self.failures, self.last_failure = 0, ""
        with self._lock:  # callers who asked during the build share it
            if self._requested is future:
                self._requested = None
        if future.set_running_or_notify_cancel():
            future.set_result(snapshot)

    def _failed(self, error: Exception) -> Snapshot | None:
        """Count a failed build (logged once per kind of failure, not on every poll); the last stats stay."""
        reason = f"{type(error).__name__}: {error}"
        if reason != self.last_failure:
            log.exception("building the stats failed (the last stats are served meanwhile)")
        self.failures += 1
        self.last_failure = reason
        self.expires = self.monotonic() + self.update_interval  # try again at the usual pace, not on every call
        return self.snapshot

    def stop(self) -> None:
        """Answer any waiting caller with what there is (on shutdown)."""
        self.serving = False
        with self._lock:
            future, self._requested = self._requested, None
        if future is not None and future.set_running_or_notify_cancel():
            future.set_result(self.snapshot)


class CurrentFigures:
    def __init__(self, windows: FigureWindows, accounting: Accounting, store: Store, sources: Sources,
                 clocks: Clocks, ring: Ring, reader: TickReader, ledger: EnergyLedger, availability: Availability,
                 comparisons: ComparisonHooks, grid: GridIntensity, service: Callable[[], RequestSummary],
                 rate: Callable[[], SampleRate] = SampleRate, footprint: Callable[[], FootprintNow] = FootprintNow):
        """``service()``: this service's own requests (the API counts them); ``rate()``: the sampler's rate now;
        ``footprint()``: the service's own cost since start."""
        self.windows = windows
        self.accounting = accounting
        self.store = store
        self.sources = sources
        self.clocks = clocks
        self.ring = ring
        self.reader = reader
        self.ledger = ledger
        self.availability = availability
        self.comparisons = comparisons
        self.grid = grid
        self.service = service
        self.rate = rate
        self.footprint = footprint

    def compute(self) -> Figures:
        sources = self.sources
        now_s = self.clocks.wall()
        now_ms = now_s * MS_PER_S
        window = self.ring.since(now_ms - self.windows.current_s * MS_PER_S)
        if not len(window):
            window = self.ring.latest(1)
        run_guarded(self.store, lambda: self.comparisons.refresh(self.store.writer, now_ms),
                    "reloading comparisons (the stats show the last ones loaded)")
        ledger = self.ledger.view()
        return compute_figures(
            accounting=self.accounting, windows=self.windows, now_s=now_s, current=self.ring.columns_of(window),
            latency_ms=sources.latency.median_ms(), latency_source=sources.latency.reader.name,
            system_source=sources.host.name, window=ledger.window, totals=ledger.totals,
            uptime_pct=self.availability.uptime_pct(now_ms, self.windows.availability_s),
            comparisons=self.comparisons.shown(), service=self.service(), grid=self.grid,
            methods=current_methods(sources.meter, sources.gpu), tdp=sources.meter.tdp,
            gpu_infos=sources.gpu.gpus, gpu_readings=self.reader.last_gpus,
            condition_sources=sources.conditions.sources() if sources.conditions is not None else {},
            rate=self.rate(), footprint=self.footprint())
