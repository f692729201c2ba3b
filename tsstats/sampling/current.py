"""The figures of now, from what the sampler holds in memory (built on the sampler thread, on demand)."""

from __future__ import annotations

from collections.abc import Callable

from tsstats.core.units import MS_PER_S
from tsstats.figures.grid import GridIntensity
from tsstats.figures.moment import Accounting, Figures, FigureWindows, RequestSummary, compute_figures
from tsstats.sampling.availability import Availability
from tsstats.sampling.clocks import Clocks
from tsstats.sampling.energy import EnergyLedger
from tsstats.sampling.guard import run_guarded
from tsstats.sampling.hooks import ComparisonHooks
from tsstats.sampling.meter import current_methods
from tsstats.sampling.reading import Sources, TickReader
from tsstats.sampling.ring import Ring
from tsstats.storage.store import Store


class CurrentFigures:
    def __init__(self, windows: FigureWindows, accounting: Accounting, store: Store, sources: Sources,
                 clocks: Clocks, ring: Ring, reader: TickReader, ledger: EnergyLedger, availability: Availability,
                 comparisons: ComparisonHooks, grid: GridIntensity, service: Callable[[], RequestSummary]):
        """``service()``: this service's own requests (the API counts them)."""
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
            condition_sources=sources.conditions.sources() if sources.conditions is not None else {})
