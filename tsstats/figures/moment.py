"""The figures of one moment as a typed object, computed from what the sampler holds in memory.

``Figures`` holds every figure unrounded, NaN where this machine cannot measure it; the dashboard's JSON
(``api.dashboard_json``) and the Prometheus exposition (``api.prometheus``) are two renderings of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tsstats.core.units import MS_PER_S
from tsstats.figures import formulas
from tsstats.figures.energy import EnergyReport, EnergySums, Totals, report
from tsstats.figures.grid import GridIntensity
from tsstats.figures.methods import Methods
from tsstats.sources.gpu import GpuInfo, GpuReading
from tsstats.sources.power import TdpMatch

NAN = float("nan")
LATENCY_WINDOW_S = 30


@dataclass(frozen=True)
class GpuFigure:
    index: int
    name: str
    unsupported: tuple[str, ...]
    utilization_pct: float
    power_w: float
    library: str = "nvml"  # the reader's: nvml or amdsmi
    temperature_c: float = NAN


@dataclass(frozen=True)
class RequestSummary:
    """This service's own API requests over a window: count, mean handling time and share of 5xx answers."""

    window_s: int
    requests: int
    mean_ms: float
    server_error_pct: float


@dataclass(frozen=True)
class ComparisonCounts:
    """The comparison counts and averages (``comparisons.stats``)."""

    running: int = 0
    queued: int = 0
    completed: int = 0
    models: int = 0
    accuracy_pct: float = 0.0
    speed: float = 0.0
    fair: int = 0  # of the finished: judged fair, unfair, or not judged (a run that never started)
    unfair: int = 0
    unjudged: int = 0


@dataclass(frozen=True)
class ComparisonFigures:
    """What the stats show of comparisons and offsets."""

    counts: ComparisonCounts = ComparisonCounts()
    activity: formulas.Activity = formulas.comparison_activity(formulas.Outcomes())
    offsets_kg: float = 0.0


@dataclass(frozen=True)
class SampleRate:
    """The sampler's rate now and why: ``full_because`` names what needs the full rate (``asked``: the stats,
    history or conditions asked for within the last minute; ``stream``: a stream client; ``measuring``: a run),
    empty at the idle rate."""

    hz: float = 10.0
    full_hz: float = 10.0
    idle_hz: float = 1.0
    full_because: tuple[str, ...] = ()


@dataclass(frozen=True)
class FootprintNow:
    """tsstats' own cost since its sampler was built (``sampling.footprint``): its CPU seconds in all and by part,
    its resident memory, and its energy by a run's attribution (joules before PUE)."""

    seconds: float = 0.0
    cpu_s: float = 0.0
    cpu_by_part_s: tuple[tuple[str, float], ...] = ()
    resident_bytes: float = NAN
    energy_j: float = 0.0

    @property
    def cpu_pct(self) -> float:
        """Mean CPU over its life, in % of one core."""
        return 100.0 * self.cpu_s / self.seconds if self.seconds > 0 else NAN

    @property
    def power_w(self) -> float:
        """Mean power attributed to it over its life (before PUE)."""
        return self.energy_j / self.seconds if self.seconds > 0 else NAN


@dataclass(frozen=True)
class PowerNow:
    """Each component's mean power over the current window (NaN: not measured here)."""

    cpu_w: float = NAN
    gpu_w: float = NAN
    memory_w: float = NAN

    def by_component(self) -> dict[str, float]:
        parts = {"cpu": self.cpu_w, "gpu": self.gpu_w, "memory": self.memory_w}
        known = [value for value in parts.values() if math.isfinite(value)]
        return {**parts, "total": sum(known) if known else NAN}


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
    comparisons: ComparisonCounts
    system_load_pct: float
    energy: EnergyReport  # over the report window, PUE applied
    uptime_pct: float
    activity: formulas.Activity
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
    grid: GridIntensity
    tdp: TdpMatch
    grid_outside: int = 0  # samples of the report window outside the grid's rows over time
    condition_sources: tuple[tuple[str, str], ...] = ()  # each group of the conditions' readings: its source
    power: PowerNow = PowerNow()

    accounting: Accounting = field(default_factory=lambda: Accounting())  # PUE and baseline applied
    windows: FigureWindows = field(default_factory=lambda: FigureWindows())
    rate: SampleRate = SampleRate()
    footprint: FootprintNow = FootprintNow()

    @property
    def estimated(self) -> tuple[str, ...]:
        """Fields that come from a model rather than a meter."""
        if self.metered:
            return ()
        saved = ("totalCarbonSaved",) if math.isfinite(self.carbon_saved_kg) else ()
        return ("energyConsumption", "carbonFootprint", "energyEfficiency", "greenScore", *saved)


@dataclass(frozen=True)
class FigureWindows:
    """The spans the figures of now are taken over, in seconds, and the sample interval, in ms."""

    current_s: float = 1.0
    availability_s: float = 30 * 86_400.0
    report_s: float = 86_400.0
    activity_s: float = 3_600.0
    sample_interval_ms: float = 100.0


@dataclass(frozen=True)
class Accounting:
    """What the figures apply: the PUE, and the declared baseline a saving is counted against (None: none)."""

    pue: float = 1.0
    baseline_power_w: float | None = None
    baseline_intensity: float | None = None


def compute_figures(*, accounting: Accounting, windows: FigureWindows, now_s: float, current: dict[str, np.ndarray],
                    latency_ms: float,
                    latency_source: str, system_source: str, window: EnergySums, totals: Totals, uptime_pct: float,
                    comparisons: ComparisonFigures, service: RequestSummary, grid: GridIntensity, methods: Methods,
                    tdp: TdpMatch, gpu_infos: list[GpuInfo], gpu_readings: list[GpuReading],
                    condition_sources: dict[str, str] | None = None, rate: SampleRate = SampleRate(),
                    footprint: FootprintNow = FootprintNow()) -> Figures:
    """Every figure of the stats body from in-memory state: no I/O."""
    pue = accounting.pue
    intensity = window.g_per_kwh(grid.g_per_kwh)  # per sample, at the grid's value then
    renewable = window.renewable_pct(grid.renewable_pct)
    energy = report(window, pue, intensity)
    efficiency = formulas.energy_efficiency_pct(window.cpu_j, window.cpu_active_j, window.gpu_j, window.gpu_idle_j)
    saved = formulas.carbon_saved_kg(totals.total_j * pue, totals.covered_s, grid.g_per_kwh,
                                    accounting.baseline_power_w, accounting.baseline_intensity)
    readings = {reading.index: reading for reading in gpu_readings}
    gpus = tuple(GpuFigure(info.index, info.name, tuple(sorted(info.unsupported)),
                           readings[info.index].utilization_pct if info.index in readings else NAN,
                           readings[info.index].power_w if info.index in readings else NAN, info.library,
                           readings[info.index].temperature_c if info.index in readings else NAN)
                 for info in gpu_infos)
    return Figures(
        generated_ms=int(now_s * MS_PER_S),
        cpu_pct=formulas.finite_mean(current["cpu_pct"]),
        gpu_pct=formulas.finite_mean(current["gpu_pct"]) if gpu_infos else NAN,
        memory_pct=formulas.last_finite(current["mem_pct"]),
        network_latency_ms=latency_ms,
        tcp_established=formulas.last_finite(current["tcp_estab"]),
        comparisons=comparisons.counts,
        system_load_pct=formulas.system_load_pct(formulas.last_finite(current["load1"]),
                                                formulas.last_finite(current["logical_cpus"])),
        energy=energy,
        uptime_pct=uptime_pct,
        activity=comparisons.activity,
        carbon_saved_kg=saved if saved is not None else NAN,
        green_score=formulas.green_score(intensity, efficiency, renewable),
        efficiency_pct=efficiency,
        renewable_pct=renewable,
        grid_outside=window.outside,
        offsets_kg=comparisons.offsets_kg,
        methods=methods,
        metered=methods.metered,
        gpus=gpus,
        latency_source=latency_source,
        system_source=system_source,
        condition_sources=tuple(sorted((condition_sources or {}).items())),
        power=PowerNow(formulas.mean_power_w(current["cpu_j"], current["interval_s"]),
                       formulas.mean_power_w(current["gpu_j"], current["interval_s"]) if gpu_infos else NAN,
                       formulas.mean_power_w(current["mem_j"], current["interval_s"])),
        service=service,
        grid=grid,
        tdp=tdp,
        accounting=accounting,
        windows=windows,
        rate=rate,
        footprint=footprint,
    )
