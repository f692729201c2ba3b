"""The Prometheus rendering of ``Figures``, through prometheus_client's collector API, in base units.

A collector is built per scrape; there is no global registry. Gauges come from the unrounded figures (a figure
this machine cannot measure is absent, not 0); the energy counters from the ledger at the moment of the
scrape, which never decrease while the process runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from tsstats.api.router import RequestStats
from tsstats.comparisons.models import ModelSeries
from tsstats.core.units import JOULES_PER_KWH
from tsstats.figures.energy import Totals
from tsstats.figures.methods import ESTIMATED_METHODS, Method
from tsstats.figures.moment import Figures, FootprintNow, SampleRate
from tsstats.sources.conditions import Conditions
from tsstats.sources.gpu import THROTTLED, GpuConditions
from tsstats.storage.reads import DatabaseMemory

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format 0.0.4 of the contract


@dataclass(frozen=True)
class Scrape:
    """What one scrape renders."""

    figures: Figures
    totals: Totals  # retained energy before PUE, pending rows included
    pue: float
    requests: RequestStats
    samples_lost: int
    last_sample_age_s: float | None
    models: ModelSeries | None = None  # the per-model series, the most recently active models
    database_memory: list[DatabaseMemory] = field(default_factory=list)
    conditions: Conditions | None = None  # the latest reading, counters as read
    gpu_conditions: dict[int, GpuConditions] = field(default_factory=dict)  # clocks, fan, throttle, by GPU
    rate: SampleRate = SampleRate()  # the sampler's rate at the scrape
    footprint: FootprintNow = FootprintNow()  # the service's own cost at the scrape


class FiguresCollector:
    def __init__(self, scrape: Scrape):
        self.scrape = scrape

    def collect(self) -> Iterator[Metric]:
        scrape, f = self.scrape, self.scrape.figures
        requests = CounterMetricFamily("tsstats_http_requests", "API requests answered by this service, by status "
                                       "class.", labels=["code"])
        for status_class, count in scrape.requests.by_class.items():
            requests.add_metric([status_class], count)
        yield requests
        yield HistogramMetricFamily("tsstats_http_request_duration_seconds",
                                    "Time this service took to answer API requests.",
                                    buckets=scrape.requests.cumulative_buckets(),
                                    sum_value=scrape.requests.total_seconds)
        yield CounterMetricFamily("tsstats_samples_lost", "Samples overwritten before they could be written.",
                                  value=scrape.samples_lost)
        yield from energy_families(f, scrape)
        gauges = (
            ("tsstats_cpu_usage_ratio", "Share of all logical CPUs busy.", f.cpu_pct / 100),
            ("tsstats_memory_usage_ratio", "(total - available) / total physical memory.", f.memory_pct / 100),
            ("tsstats_gpu_usage_ratio", "Mean NVML GPU utilization over all GPUs.", f.gpu_pct / 100),
            ("tsstats_network_latency_seconds", "Median network round trip over the last 30 s.",
             f.network_latency_ms / 1000),
            ("tsstats_tcp_established_connections", "TCP connections in state ESTABLISHED.", f.tcp_established),
            ("tsstats_system_load_ratio", "1-minute load average over logical CPUs.", f.system_load_pct / 100),
            ("tsstats_uptime_ratio", "Share of the availability window covered by samples.", f.uptime_pct / 100),
            ("tsstats_energy_window_joules", "Energy over the reporting window, PUE applied.",
             f.energy.total_kwh * JOULES_PER_KWH),
            ("tsstats_carbon_window_grams", "Emissions of the energy over the reporting window.", f.energy.carbon_g),
            ("tsstats_grid_intensity_grams_per_kwh", "Grid carbon intensity over the reporting window (g CO2e per "
             "kWh, each sample at the grid's value then): energy times it is carbon.", f.energy.g_per_kwh),
            ("tsstats_comparison_response_seconds", "Mean model response time of the comparisons finished within "
             "the activity window.", f.activity.response_ms / 1000),
            ("tsstats_comparison_error_ratio", "Failed / (completed + failed) comparisons finished within the "
             "activity window.", f.activity.error_pct / 100),
            ("tsstats_last_sample_age_seconds", "Seconds since the sampler's last reading.",
             scrape.last_sample_age_s if scrape.last_sample_age_s is not None else math.nan),
            ("tsstats_sample_rate_hertz", "The sampler's rate now: sample_hz while the stats, history or conditions "
             "were asked for within the last minute, a stream client is connected or a run is measured, else "
             "idle_sample_hz (a scrape does not raise it).", scrape.rate.hz),
        )
        for name, help_text, value in gauges:
            if math.isfinite(value):
                yield GaugeMetricFamily(name, help_text, value=value)
        if scrape.conditions is not None:
            yield from condition_families(scrape.conditions)
        if scrape.models is not None:
            yield from model_families(scrape.models)
        yield from database_families(scrape.database_memory)
        yield from comparison_families(f)
        yield from gpu_families(f)
        yield from gpu_condition_families(f, scrape.gpu_conditions)
        yield from footprint_families(scrape.footprint)


def comparison_families(f: Figures) -> Iterator[Metric]:
    """Comparisons by status, and the finished by the verdict on their conditions."""
    comparisons = GaugeMetricFamily("tsstats_comparisons", "Comparisons by status (completed: ever).",
                                    labels=["status"])
    comparisons.add_metric(["queued"], f.comparisons.queued)
    comparisons.add_metric(["running"], f.comparisons.running)
    comparisons.add_metric(["completed"], f.comparisons.completed)
    yield comparisons
    judged = GaugeMetricFamily("tsstats_comparisons_finished", "Finished comparisons (completed, failed, "
                               "cancelled) by the verdict on their conditions: fair, unfair (contention, "
                               "throttling, ...), unjudged (never started).", labels=["verdict"])
    for name in ("fair", "unfair", "unjudged"):
        judged.add_metric([name], getattr(f.comparisons, name))
    yield judged


def footprint_families(footprint: FootprintNow) -> Iterator[Metric]:
    """tsstats' own cost: its CPU time by part, its resident memory, its energy by a run's attribution."""
    cpu = CounterMetricFamily("tsstats_self_cpu_seconds", "This service's own CPU time since its sampler was "
                              "built, by part of its work (other: the HTTP event loop and the latency thread).",
                              labels=["part"])
    for part, seconds in footprint.cpu_by_part_s:
        cpu.add_metric([part], seconds)
    yield cpu
    if math.isfinite(footprint.resident_bytes):
        yield GaugeMetricFamily("tsstats_self_resident_memory_bytes", "This service's resident memory.",
                                value=footprint.resident_bytes)
    yield CounterMetricFamily("tsstats_self_energy_joules", "This service's own energy since its sampler was built, "
                              "by the attribution a run's processes get (CPU and memory shares), before PUE.",
                              value=footprint.energy_j)


def energy_families(f: Figures, scrape: Scrape) -> Iterator[Metric]:
    """Energy counters and power gauges by component, leaving out a component this machine does not measure
    (no GPU: no gpu series, not a 0), and each component's method and whether it is a model's estimate."""
    methods = f.methods.as_dict()
    absent = {component for component, method in methods.items() if method == Method.ABSENT}
    energy = CounterMetricFamily("tsstats_energy_joules", "Energy used by this machine over everything "
                                 "retained, PUE applied.", labels=["component"])
    for component, joules in scrape.totals.by_component().items():
        if component not in absent or joules > 0:  # a GPU seen earlier keeps its energy
            energy.add_metric([component], joules * scrape.pue)
    yield energy
    power = GaugeMetricFamily("tsstats_power_watts", "Mean power over the current window, before PUE.",
                              labels=["component"])
    yield from _finite(power, [([component], watts) for component, watts in f.power.by_component().items()])
    info = GaugeMetricFamily("tsstats_energy_method_info", "How each component's energy is obtained; estimated "
                             "is true for a model (TDP, DIMM) rather than a meter.",
                             labels=["component", "method", "estimated"])
    for component, method in methods.items():
        if component not in absent:
            info.add_metric([component, method, "true" if method in ESTIMATED_METHODS else "false"], 1)
    yield info


def gpu_families(f: Figures) -> Iterator[Metric]:
    if not f.gpus:
        return
    utilization = GaugeMetricFamily("tsstats_gpu_utilization_ratio", "NVML utilization per GPU.",
                                    labels=["gpu", "name"])
    power = GaugeMetricFamily("tsstats_gpu_power_watts", "NVML power per GPU.", labels=["gpu", "name"])
    for gpu in f.gpus:
        labels = [str(gpu.index), gpu.name]
        if math.isfinite(gpu.utilization_pct):
            utilization.add_metric(labels, gpu.utilization_pct / 100)
        if math.isfinite(gpu.power_w):
            power.add_metric(labels, gpu.power_w)
    yield utilization
    yield power


def gpu_condition_families(f: Figures, found: dict[int, GpuConditions]) -> Iterator[Metric]:
    names = {gpu.index: gpu.name for gpu in f.gpus}
    labels = ["gpu", "name"]
    rows = [([str(index), names.get(index, "")], c) for index, c in sorted(found.items())]
    yield from _finite(GaugeMetricFamily("tsstats_gpu_clock_hertz", "GPU clocks by domain (sm, memory).",
                                         labels=[*labels, "domain"]),
                       [([*key, domain], value * 1e6) for key, c in rows
                        for domain, value in (("sm", c.sm_clock_mhz), ("memory", c.memory_clock_mhz))])
    yield from _finite(GaugeMetricFamily("tsstats_gpu_fan_ratio", "GPU fan speed, of its maximum.", labels=labels),
                       [(key, c.fan_pct / 100) for key, c in rows])
    yield from _finite(GaugeMetricFamily("tsstats_gpu_temperature_celsius", "GPU temperature (its core sensor) at "
                                         "the last tick.", labels=labels),
                       [([str(gpu.index), gpu.name], gpu.temperature_c) for gpu in f.gpus])
    yield from _finite(GaugeMetricFamily("tsstats_gpu_throttled", "1 while a power-cap, thermal or hardware "
                                         "slowdown holds the GPU's clocks down.", labels=labels),
                       [(key, float(int(c.throttle_mask) & THROTTLED != 0) if math.isfinite(c.throttle_mask)
                         else math.nan) for key, c in rows])


def _finite(family: GaugeMetricFamily | CounterMetricFamily, values: list[tuple[list[str], float]]
            ) -> Iterator[Metric]:
    """The family with its finite values, or nothing where it has none (not measured here: absent, not 0)."""
    kept = [(labels, value) for labels, value in values if math.isfinite(value)]
    for labels, value in kept:
        family.add_metric(labels, value)
    if kept:
        yield family


def condition_families(c: Conditions) -> Iterator[Metric]:
    """The conditions (docs/conditions.md) by Prometheus' conventions: cumulative counters as read (rates are
    the query's), levels as gauges in base units."""
    if c.kinds is not None:
        yield from _finite(CounterMetricFamily("tsstats_cpu_seconds", "CPU time of all CPUs by mode (user with "
                                               "nice, system with interrupts).", labels=["mode"]),
                           [([mode], getattr(c.kinds, mode)) for mode in ("user", "system", "iowait", "steal")])
    if c.cores:
        yield from _finite(CounterMetricFamily("tsstats_cpu_core_seconds", "CPU time of each core by mode.",
                                               labels=["core", "mode"]),
                           [([str(core), mode], getattr(kinds, mode)) for core, kinds in enumerate(c.cores)
                            for mode in ("user", "system", "iowait", "steal", "idle")])
    if c.disks is not None:
        yield from _finite(CounterMetricFamily("tsstats_disk_read_bytes", "Bytes read from whole disks."),
                           [([], c.disks.read_bytes)])
        yield from _finite(CounterMetricFamily("tsstats_disk_written_bytes", "Bytes written to whole disks."),
                           [([], c.disks.write_bytes)])
        yield from _finite(CounterMetricFamily("tsstats_disk_reads_completed", "Reads completed by whole disks."),
                           [([], c.disks.reads)])
        yield from _finite(CounterMetricFamily("tsstats_disk_writes_completed", "Writes completed by whole "
                                               "disks."), [([], c.disks.writes)])
    yield from _finite(CounterMetricFamily("tsstats_swap_in_bytes", "Bytes swapped in since boot."),
                       [([], c.swapped_in_bytes)])
    yield from _finite(CounterMetricFamily("tsstats_swap_out_bytes", "Bytes swapped out since boot."),
                       [([], c.swapped_out_bytes)])
    yield from _finite(GaugeMetricFamily("tsstats_swap_used_bytes", "Swap in use."), [([], c.swap_used_bytes)])
    yield from _finite(GaugeMetricFamily("tsstats_pressure_stall_ratio", "Share of the last 10 s in which some "
                                         "task waited for the resource (PSI some avg10).", labels=["resource"]),
                       [([resource], value / 100) for resource, value in c.pressure_pct.items()])
    yield from _finite(GaugeMetricFamily("tsstats_filesystem_used_ratio", "Used share of the filesystem holding "
                                         "the database."), [([], c.filesystem_used_pct / 100)])
    sensors = c.sensors
    yield from _finite(GaugeMetricFamily("tsstats_cpu_temperature_celsius", "CPU temperature: the package, and "
                                         "the hottest core.", labels=["sensor"]),
                       [(["package"], sensors.package_c), (["hottest_core"], sensors.hottest_core_c)])
    yield from _finite(GaugeMetricFamily("tsstats_cpu_frequency_hertz", "CPU clock: mean and minimum over cores, "
                                         "and the highest maximum.", labels=["stat"]),
                       [(["mean"], sensors.freq_mean_mhz * 1e6), (["min"], sensors.freq_min_mhz * 1e6),
                        (["max"], sensors.freq_max_mhz * 1e6)])
    yield from _finite(CounterMetricFamily("tsstats_cpu_thermal_throttle_events", "CPU thermal throttle events "
                                           "since boot, cores and packages."), [([], sensors.throttle_count)])


def model_families(series: ModelSeries) -> Iterator[Metric]:
    """Per model, so that one Prometheus sums a lab's machines: its runs by status now (a gauge: a run moves
    between statuses), and counters that only grow while the service runs (and across restarts, kept in the
    database): the runs that reached a final status, their energy, items and carbon (a run naming two models
    counts for both; a deleted record takes nothing back). Only the ``metrics_max_models`` most recently active
    models have series; ``tsstats_model_series_omitted`` says how many others there are."""
    omitted = GaugeMetricFamily("tsstats_model_series_omitted", "Models with comparisons that have no series here "
                                "(beyond metrics_max_models, the least recently active).")
    omitted.add_metric([], series.omitted)
    yield omitted
    if not series.rows:
        return
    runs = GaugeMetricFamily("tsstats_model_runs", "Comparisons naming the model now, by status.",
                             labels=["model", "status"])
    finished = CounterMetricFamily("tsstats_model_runs_finished", "Comparisons naming the model that reached a "
                                   "final status.", labels=["model"])
    energy = CounterMetricFamily("tsstats_model_energy_joules", "Energy of the finished comparisons naming the "
                                 "model, PUE applied.", labels=["model"])
    items = CounterMetricFamily("tsstats_model_items", "Items (prompts, images, tokens) the finished comparisons "
                                "naming the model reported: energy / items is its energy per item.", labels=["model"])
    carbon = CounterMetricFamily("tsstats_model_carbon_grams", "Emissions of the finished comparisons naming the "
                                 "model (g CO2e, the grid's intensity over each run).", labels=["model"])
    for model, by_status, ended, joules, counted_items, grams in series.rows:
        for status, count in by_status.items():
            runs.add_metric([model, status], count)
        finished.add_metric([model], ended)
        energy.add_metric([model], joules)
        items.add_metric([model], counted_items)
        carbon.add_metric([model], grams)
    yield runs
    yield finished
    yield energy
    yield items
    yield carbon


def database_families(memory: list[DatabaseMemory]) -> Iterator[Metric]:
    """DuckDB's memory by its buffer manager's tag, and what it spilled to disk (the bound is
    ``db_memory_limit``)."""
    if not memory:
        return
    held = GaugeMetricFamily("tsstats_database_memory_bytes", "Memory DuckDB holds, by what holds it.",
                             labels=["tag"])
    spilled = GaugeMetricFamily("tsstats_database_temporary_bytes", "Bytes DuckDB spilled to its temporary "
                                "directory, by what spilled them.", labels=["tag"])
    for entry in memory:
        held.add_metric([entry.tag], entry.memory_bytes)
        spilled.add_metric([entry.tag], entry.temporary_bytes)
    yield held
    yield spilled


def render_metrics(scrape: Scrape) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FiguresCollector(scrape))
    return generate_latest(registry)
