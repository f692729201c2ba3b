"""The figures of one moment as a typed object, computed from what the sampler holds in memory.

``Figures`` holds every figure unrounded, NaN where this machine cannot measure it; the dashboard's JSON
(``dashboard.py``) and the Prometheus exposition (``exposition.py``) are two renderings of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import figures
from .energy import EnergyReport, LedgerView, report
from .meter import Methods, current_methods
from .request_stats import RequestSummary

NAN = float("nan")
LATENCY_WINDOW_S = 30


@dataclass(frozen=True)
class GpuFigure:
    index: int
    name: str
    unsupported: tuple[str, ...]
    utilization_pct: float
    power_w: float


@dataclass(frozen=True)
class Comparisons:
    """The comparison counts and averages of ``comparisons.comparison_stats``."""

    running: int = 0
    queued: int = 0
    completed: int = 0
    models: int = 0
    accuracy_pct: float = 0.0
    speed: float = 0.0


@dataclass(frozen=True)
class Figures:
    generated_ms: int
    # systemMetrics
    cpu_pct: float
    gpu_pct: float
    memory_pct: float
    network_latency_ms: float
    tcp_established: float
    # liveStats
    comparisons: Comparisons
    system_load_pct: float
    energy: EnergyReport  # over the report window, PUE applied
    uptime_pct: float
    activity: figures.Activity
    # sustainability
    carbon_saved_kg: float
    green_score: float
    efficiency_pct: float
    renewable_pct: float
    offsets_kg: float
    # how they were obtained
    methods: Methods
    metered: bool
    gpus: tuple[GpuFigure, ...]
    latency_source: str
    system_source: str  # procfs or psutil
    service: RequestSummary
    grid: Any  # grid.GridIntensity
    tdp: Any  # sources.power.TdpMatch
    grid_outside: int = 0  # samples of the report window outside the grid's rows over time

    @property
    def estimated(self) -> tuple[str, ...]:
        """Fields that come from a model rather than a meter."""
        if self.metered:
            return ()
        saved = ("totalCarbonSaved",) if math.isfinite(self.carbon_saved_kg) else ()
        return ("energyConsumption", "carbonFootprint", "energyEfficiency", "greenScore", *saved)


def compute_figures(*, settings, now_s: float, current: dict[str, np.ndarray], latency_ms: float,
                    latency_source: str, system_source: str, ledger: LedgerView, uptime_pct: float, offsets_kg: float,
                    comparisons: Comparisons, activity: figures.Activity, service: RequestSummary, grid, meter, gpu,
                    gpu_readings) -> Figures:
    """Every figure of the stats body from in-memory state: no I/O."""
    pue = settings.pue
    window = ledger.window
    intensity = window.g_per_kwh(grid.g_per_kwh)  # per sample, at the grid's value then
    renewable = window.renewable_pct(grid.renewable_pct)
    energy = report(window, pue, intensity)
    efficiency = figures.energy_efficiency_pct(window.cpu_j, window.cpu_active_j, window.gpu_j, window.gpu_idle_j)
    saved = figures.carbon_saved_kg(ledger.totals.total_j * pue, ledger.totals.covered_s, grid.g_per_kwh,
                                    settings.baseline_power_w, settings.baseline_intensity)
    methods = current_methods(meter, gpu)
    readings = {reading.index: reading for reading in gpu_readings}
    gpus = tuple(GpuFigure(info.index, info.name, tuple(sorted(info.unsupported)),
                           readings[info.index].utilization_pct if info.index in readings else NAN,
                           readings[info.index].power_w if info.index in readings else NAN) for info in gpu.gpus)
    return Figures(
        generated_ms=int(now_s * 1000),
        cpu_pct=figures.finite_mean(current["cpu_pct"]),
        gpu_pct=figures.finite_mean(current["gpu_pct"]) if gpu.gpus else NAN,
        memory_pct=figures.last_finite(current["mem_pct"]),
        network_latency_ms=latency_ms,
        tcp_established=figures.last_finite(current["tcp_estab"]),
        comparisons=comparisons,
        system_load_pct=figures.system_load_pct(figures.last_finite(current["load1"]),
                                                figures.last_finite(current["logical_cpus"])),
        energy=energy,
        uptime_pct=uptime_pct,
        activity=activity,
        carbon_saved_kg=saved if saved is not None else NAN,
        green_score=figures.green_score(intensity, efficiency, renewable),
        efficiency_pct=efficiency,
        renewable_pct=renewable,
        grid_outside=window.outside,
        offsets_kg=offsets_kg,
        methods=methods,
        metered=methods.metered,
        gpus=gpus,
        latency_source=latency_source,
        system_source=system_source,
        service=service,
        grid=grid,
        tdp=meter.tdp,
    )
