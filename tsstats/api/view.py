"""What the HTTP server sees of the service: the stats, health, the grid, the GPUs, the tiers, energy over an
interval, the machine's state now, and the one write path. The handlers see only this class; it reads, and
never changes, the sampler's parts they report on (the publisher's snapshot, the flusher's health, the rings'
pending rows, the tick reader's conditions, the rollups' tiers, the room for records). Built by the assembly;
called on the event loop (reads hand their work to the store's read pool, writes to the writer thread)."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tsstats.api.prometheus import Scrape
from tsstats.api.router import RequestStats
from tsstats.comparisons.lifecycle import ComparisonLife
from tsstats.comparisons.models import model_series, model_table
from tsstats.comparisons.phases import NewPhase, PhaseEnd
from tsstats.comparisons.records import NewOffset
from tsstats.comparisons.validation import ComparisonUpdate, NewComparison
from tsstats.core.settings import Settings
from tsstats.figures.energy import EnergySums
from tsstats.figures.grid import GridIntensity, GridRow
from tsstats.figures.methods import Methods
from tsstats.figures.moment import FootprintNow, SampleRate
from tsstats.sampling.energy import GridFeed, GridRemoval, energy_between
from tsstats.sampling.meter import current_methods
from tsstats.sampling.publishing import Snapshot
from tsstats.sampling.reading import MachineNow
from tsstats.sampling.sampler import Sampler
from tsstats.sources.power import hardware_fixes
from tsstats.storage.history import PendingRows
from tsstats.storage.reads import database_memory
from tsstats.storage.retention import GRID_ROW_BYTES, RECORD_ROW_BYTES
from tsstats.storage.rollups import TierState
from tsstats.storage.rows import GPU_ROW, HOST_ROW
from tsstats.storage.sql import Connection
from tsstats.storage.store import Store


@dataclass(frozen=True)
class HealthReport:
    last_sample_age_s: float | None
    stalled: bool
    database_path: str
    writable: bool
    last_error: str
    flushes: int
    reopens: int
    samples_held: int  # taken, not yet written
    samples_lost: int
    snapshot: Snapshot | None
    snapshot_age_s: float | None
    build_failures: int  # stats builds that failed in a row
    build_error: str


def record_bytes(request_body: bytes) -> int:
    """About what a record write adds: its body's bytes and a row's fixed columns."""
    return len(request_body) + RECORD_ROW_BYTES


class ServiceView:
    def __init__(self, settings: Settings, store: Store, sampler: Sampler, comparisons: ComparisonLife,
                 grid: GridIntensity, grid_feed: GridFeed, requests: RequestStats):
        self.settings = settings
        self.requests = requests
        self.grid = grid
        self.database_path = store.path
        self.database_directory = os.path.dirname(os.path.abspath(store.path))
        self.monotonic: Callable[[], float] = sampler.clocks.monotonic
        self._store = store
        self._sampler = sampler
        self._comparisons = comparisons
        self._grid_feed = grid_feed
        self._publisher = sampler.parts.publisher
        self._room = sampler.parts.retention.room
        self.demand = sampler.demand  # what needs the full sample rate: the routes that are looked at say so

    # stats
    @property
    def snapshot(self) -> Snapshot | None:
        return self._publisher.snapshot

    @property
    def snapshot_expires(self) -> float:
        """Monotonic time after which the snapshot is due for a rebuild."""
        return self._publisher.expires

    def request_snapshot(self) -> Future[Snapshot | None]:
        return self._publisher.request()

    def scrape(self, snapshot: Snapshot) -> Scrape:
        parts = self._sampler.parts
        return Scrape(figures=snapshot.figures, totals=parts.ledger.view().totals, pue=self.settings.pue,
                      requests=self.requests, samples_lost=parts.flusher.health.lost_rows,
                      last_sample_age_s=self.health().last_sample_age_s, conditions=parts.reader.conditions,
                      gpu_conditions=parts.reader.gpu_conditions, rate=self._sampler.rate(),
                      footprint=parts.footprint.view())

    def full_scrape(self, con: Connection, snapshot: Snapshot) -> Scrape:
        """A scrape with the per-model series and the database's memory (a read: any thread)."""
        return replace(self.scrape(snapshot), models=model_series(con, self.settings.metrics_max_models),
                       database_memory=database_memory(con))

    def scrape_now(self) -> Scrape | None:
        """A whole scrape of the latest stats, read on the calling thread (None before the first stats)."""
        snapshot = self._publisher.snapshot
        return None if snapshot is None else self._store.read_now(self.full_scrape, snapshot)

    def health(self) -> HealthReport:
        sampler, now = self._sampler, self.monotonic()
        flush, snapshot = sampler.parts.flusher.health, self._publisher.snapshot
        last = sampler.last_tick_mono
        return HealthReport(
            last_sample_age_s=None if last is None else max(now - last, 0.0), stalled=sampler.stalled,
            database_path=self._store.path, writable=flush.ok and self._store.failure is None,
            last_error=self._store.failure or flush.error, flushes=flush.flushes, reopens=self._store.reopens,
            samples_held=len(sampler.parts.ring.pending()), samples_lost=flush.lost_rows, snapshot=snapshot,
            snapshot_age_s=None if snapshot is None else now - snapshot.built_mono,
            build_failures=self._publisher.failures, build_error=self._publisher.last_failure)

    def footprint(self) -> FootprintNow:
        """This service's own cost since its sampler was built."""
        return self._sampler.parts.footprint.view()

    def rate(self) -> SampleRate:
        return self._sampler.rate()

    # what is measured
    def gpus_present(self) -> set[int]:
        return {info.index for info in self._sampler.sources.gpu.gpus}

    def current_methods(self) -> Methods:
        sources = self._sampler.sources
        return current_methods(sources.meter, sources.gpu)

    def check(self) -> dict[str, Any]:
        """Why a figure may read "not measured" here, and what would measure more, from the open readers."""
        sources, settings = self._sampler.sources, self.settings
        gpu_reason = sources.gpu.error or "no GPU answered"
        reasons = {
            "gpuUsage": f"no NVIDIA GPU readings ({gpu_reason})",
            "networkLatency": "no round trip in the last 30 s: no established TCP connection to another host"
                              + ("" if settings.latency_targets else " (set latency_targets to probe one)"),
            "responseTime": "no comparison finished within the activity window reported latencyMs",
            "errorRate": "no comparison completed or failed within the activity window",
            "totalCarbonSaved": "no baseline declared: set baseline_power_w or baseline_intensity",
        }
        fixes = hardware_fixes(settings.powercap_root, sources.meter.rapl, sources.gpu, sources.dimms_known)
        return {"reasons": reasons, "fixes": fixes, "methods": self.current_methods().as_dict(),
                "system": sources.host.name}

    def machine_now(self) -> MachineNow | None:
        """The last half second's CPU by whom and the latest temperatures (None before the first)."""
        return self._sampler.parts.reader.now

    def tiers(self) -> TierState:
        return self._sampler.parts.rollups.state

    # reads and writes
    async def read(self, work: Callable[..., Any], *args: Any) -> Any:
        """A light read (a page, a record): threads of its own, never behind a heavy one."""
        return await self._store.read(work, *args)

    async def heavy_read(self, work: Callable[..., Any], *args: Any) -> Any:
        """A heavy read (history, reports, exports, backups): a few at once, ``ReadsBusy`` (503) beyond."""
        return await self._store.read(work, *args, heavy=True)

    def pending_rows(self) -> PendingRows:
        """The sample rows not stored yet, as the tables store them (any thread): history to the last tick."""
        return PendingRows(host=HOST_ROW.to_stored(self._sampler.pending_columns()),
                           gpu=GPU_ROW.to_stored(self._sampler.pending_gpu_columns()))

    def model_table(self, con: Connection, from_ms: int, to_ms: int, fair_only: bool) -> dict[str, Any]:
        """The models table over [from_ms, to_ms]: its whole hours from the parts kept write by write (a read)."""
        return model_table(con, from_ms, to_ms, fair_only, self._comparisons.hours)

    def energy_between(self, con: Connection, from_ms: float, to_ms: float) -> EnergySums:
        """Energy over [from_ms, to_ms) from stored rows and those still in memory (a read, any thread)."""
        pending: dict[str, np.ndarray] = self._sampler.pending_columns()
        return energy_between(con, pending, from_ms, to_ms, self.grid)

    def write(self, work: Callable[[Connection], Any], adds_bytes: int = 0) -> Future[Any]:
        """Run ``work(connection)`` in one transaction on the writer thread; resolves once committed. A record
        write of about ``adds_bytes`` beyond the records' room under ``max_db_mb`` is refused first (507)."""
        if adds_bytes:
            self._room.charge(adds_bytes)
        return self._store.write(work)

    def create_comparison(self, con: Connection, new: NewComparison, now_ms: int) -> dict[str, Any]:
        return self._comparisons.create(con, new, now_ms)

    def update_comparison(self, con: Connection, comparison_id: int, update: ComparisonUpdate,
                          now_ms: int) -> dict[str, Any]:
        return self._comparisons.update(con, comparison_id, update, now_ms)

    def delete_comparison(self, con: Connection, comparison_id: int, now_ms: int) -> bool:
        return self._comparisons.delete(con, comparison_id, now_ms)

    def add_offset(self, con: Connection, offset: NewOffset, now_ms: int) -> dict[str, Any]:
        return self._comparisons.add_offset(con, offset, now_ms)

    def open_phase(self, con: Connection, comparison_id: int, new: NewPhase, now_ms: int) -> dict[str, Any]:
        return self._comparisons.open_phase(con, comparison_id, new, now_ms)

    def close_phase(self, con: Connection, comparison_id: int, phase_id: int, end: PhaseEnd,
                    now_ms: int) -> dict[str, Any]:
        return self._comparisons.close_phase(con, comparison_id, phase_id, end, now_ms)

    def process_exists(self, pid: int) -> bool:
        return self._comparisons.process_exists(pid)

    def feed_grid(self, rows: list[GridRow]) -> Future[None]:
        self._room.charge(len(rows) * GRID_ROW_BYTES)
        return self._grid_feed.feed(rows)

    def remove_grid_rows(self, from_ms: int, to_ms: int) -> Future[GridRemoval]:
        return self._grid_feed.remove(from_ms, to_ms)
