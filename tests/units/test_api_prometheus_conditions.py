"""The conditions in Prometheus' conventions: counters as read with ``_total``, base units, and nothing for
what this machine does not measure."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from tsstats.api.prometheus import condition_families
from tsstats.sources.conditions import Conditions, CpuKinds, CpuSensorReading, Disks

NAN = math.nan


def rendered(conditions: Conditions) -> dict[str, dict[tuple, float]]:
    from prometheus_client import CollectorRegistry, generate_latest

    class Collector:
        def collect(self):
            return condition_families(conditions)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    text = generate_latest(registry).decode()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_every_condition_by_the_conventions():
    series = rendered(Conditions(
        kinds=CpuKinds(user=10.0, system=5.0, iowait=1.0, steal=0.5, total=100.0),
        pressure_pct={"cpu": 12.0, "memory": 0.0, "io": 3.0}, swap_used_bytes=1024.0, swapped_in_bytes=4096.0,
        swapped_out_bytes=8192.0, disks=Disks(read_bytes=1, write_bytes=2, reads=3, writes=4),
        filesystem_used_pct=42.0, sensors=CpuSensorReading(61.0, 70.5, 2500.0, 1200.0, 4000.0, 7.0),
        cores=(CpuKinds(5.0, 2.0, 0.5, 0.25, 50.0, idle=42.25), CpuKinds(5.0, 3.0, 0.5, 0.25, 50.0, idle=41.25))))
    assert series["tsstats_cpu_seconds_total"][(("mode", "steal"),)] == 0.5
    assert series["tsstats_disk_written_bytes_total"][()] == 2
    assert series["tsstats_disk_writes_completed_total"][()] == 4
    assert series["tsstats_swap_out_bytes_total"][()] == 8192
    assert series["tsstats_pressure_stall_ratio"][(("resource", "cpu"),)] == 0.12
    assert series["tsstats_filesystem_used_ratio"][()] == 0.42
    assert series["tsstats_cpu_temperature_celsius"][(("sensor", "hottest_core"),)] == 70.5
    assert series["tsstats_cpu_frequency_hertz"][(("stat", "min"),)] == 1.2e9
    assert series["tsstats_cpu_thermal_throttle_events_total"][()] == 7
    assert series["tsstats_cpu_core_seconds_total"][(("core", "1"), ("mode", "system"))] == 3.0


def test_gpu_clocks_fan_and_throttling():
    from tsstats.api.prometheus import gpu_condition_families
    from tsstats.figures.moment import GpuFigure
    from tsstats.sources.gpu import GpuConditions

    figures = type("F", (), {"gpus": (GpuFigure(0, "Fake H200", (), 90.0, 500.0),)})()
    found = {0: GpuConditions(1980.0, 2619.0, NAN, float(0x40 | 0x1))}
    families = {family.name: family for family in gpu_condition_families(figures, found)}
    clocks = {sample.labels["domain"]: sample.value for sample in families["tsstats_gpu_clock_hertz"].samples}
    assert clocks == {"sm": 1.98e9, "memory": 2.619e9}
    assert families["tsstats_gpu_throttled"].samples[0].value == 1.0
    assert "tsstats_gpu_fan_ratio" not in families  # passively cooled: no fan, no series


def test_what_is_not_measured_is_left_out_not_zero():
    series = rendered(Conditions(
        kinds=CpuKinds(1.0, 1.0, 0.0, 0.0, 4.0), pressure_pct={"cpu": NAN, "memory": NAN, "io": NAN},
        swap_used_bytes=0.0, swapped_in_bytes=0.0, swapped_out_bytes=0.0, disks=None, filesystem_used_pct=10.0,
        sensors=CpuSensorReading(NAN, NAN, NAN, NAN, NAN, NAN)))
    for absent in ("tsstats_cpu_temperature_celsius", "tsstats_cpu_frequency_hertz", "tsstats_pressure_stall_ratio",
                   "tsstats_cpu_thermal_throttle_events_total", "tsstats_disk_read_bytes_total"):
        assert absent not in series
    assert series["tsstats_swap_used_bytes"][()] == 0  # measured: no swap in use
