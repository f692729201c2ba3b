"""Prometheus text exposition of the sampler's figures, through prometheus_client's collector API.

A collector is built per scrape from the current snapshot; there is no global registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format 0.0.4 of the contract
STATUSES = ("queued", "running", "completed")


class SnapshotCollector:
    def __init__(self, sampler, requests, snapshot):
        self.sampler = sampler
        self.requests = requests
        self.snapshot = snapshot

    def collect(self):
        sampler = self.sampler
        snapshot = self.snapshot
        health = sampler.health
        requests = CounterMetricFamily("tsstats_http_requests", "API requests answered by this service, by status "
                                       "class.", labels=["code"])
        for status_class, count in self.requests.by_class.items():
            requests.add_metric([status_class], count)
        yield requests
        yield HistogramMetricFamily("tsstats_http_request_duration_seconds",
                                    "Time this service took to answer API requests.",
                                    buckets=self.requests.cumulative_buckets(), sum_value=self.requests.total_seconds)
        yield CounterMetricFamily("tsstats_samples_lost", "Samples overwritten before they could be written.",
                                  value=health.lost_rows)
        energy = CounterMetricFamily("tsstats_energy_joules", "Energy used by this machine since the database "
                                     "was created, PUE applied.", labels=["component"])
        for component, joules in sampler.energy_totals().items():
            energy.add_metric([component], joules * sampler.settings.pue)
        yield energy
        if snapshot is None:
            return
        data = snapshot.data
        system, live = data["systemMetrics"], data["liveStats"]
        unavailable = set(data["meta"]["unavailable"])
        gauges = (
            ("tsstats_cpu_usage_ratio", "Share of all logical CPUs busy.", system["cpuUsage"] / 100, "cpuUsage"),
            ("tsstats_memory_usage_ratio", "(total - available) / total physical memory.",
             system["memoryUsage"] / 100, "memoryUsage"),
            ("tsstats_gpu_usage_ratio", "Mean NVML GPU utilization over all GPUs.", system["gpuUsage"] / 100,
             "gpuUsage"),
            ("tsstats_network_latency_seconds", "Median network round trip over the last 30 s.",
             system["networkLatency"] / 1000, "networkLatency"),
            ("tsstats_tcp_established_connections", "TCP connections in state ESTABLISHED.",
             system["activeConnections"], "activeConnections"),
            ("tsstats_system_load_ratio", "1-minute load average over logical CPUs.", live["systemLoad"] / 100,
             "systemLoad"),
            ("tsstats_uptime_ratio", "Share of the availability window covered by samples.",
             live["uptime"] / 100, "uptime"),
            ("tsstats_energy_window_joules", "Energy over the reporting window, PUE applied.",
             live["energyConsumption"] * 3.6e6, "energyConsumption"),
            ("tsstats_carbon_window_grams", "Emissions of the energy over the reporting window.",
             live["carbonFootprint"], "carbonFootprint"),
            ("tsstats_last_sample_age_seconds", "Seconds since the sampler's last reading.",
             _age(sampler), None),
        )
        for name, help_text, value, field in gauges:
            if field in unavailable or value is None:
                continue
            yield GaugeMetricFamily(name, help_text, value=value)
        comparisons = GaugeMetricFamily("tsstats_comparisons", "Comparisons by status (completed: ever).",
                                        labels=["status"])
        comparisons.add_metric(["queued"], live["queueLength"])
        comparisons.add_metric(["running"], live["activeComparisons"])
        comparisons.add_metric(["completed"], data["comparisonStats"]["totalComparisons"])
        yield comparisons
        gpus = data["meta"]["gpus"]
        if gpus:
            utilization = GaugeMetricFamily("tsstats_gpu_utilization_ratio", "NVML utilization per GPU.",
                                            labels=["gpu", "name"])
            power = GaugeMetricFamily("tsstats_gpu_power_watts", "NVML power per GPU.", labels=["gpu", "name"])
            for gpu in gpus:
                labels = [str(gpu["index"]), gpu["name"]]
                if gpu["utilization"] is not None:
                    utilization.add_metric(labels, gpu["utilization"] / 100)
                if gpu["powerW"] is not None:
                    power.add_metric(labels, gpu["powerW"])
            yield utilization
            yield power


def _age(sampler) -> float | None:
    last = sampler.health.last_tick_mono
    return None if last is None else max(sampler.clocks.monotonic() - last, 0.0)


def render_metrics(sampler, requests, snapshot) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(sampler, requests, snapshot))
    return generate_latest(registry)
