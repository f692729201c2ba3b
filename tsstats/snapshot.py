"""The body of ``GET /api/dashboard/stats``: the four objects of the dashboard's format plus ``meta``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import figures
from .energy import EnergySums
from .meter import current_methods
from .request_stats import RequestSummary
from .timeparse import rfc3339_ms

LATENCY_WINDOW_S = 30
# every field of the four objects -> its unit (``meta.units``); the dashboard draws these units
UNITS: dict[str, dict[str, str]] = {
    "systemMetrics": {"cpuUsage": "%", "gpuUsage": "%", "memoryUsage": "%", "networkLatency": "ms",
                      "activeConnections": "count"},
    "liveStats": {"activeComparisons": "count", "queueLength": "count", "systemLoad": "%",
                  "carbonFootprint": "g CO2e", "energyConsumption": "kWh", "uptime": "%", "responseTime": "ms",
                  "errorRate": "%"},
    "sustainability": {"totalCarbonSaved": "kg CO2e", "greenScore": "score 0-100", "energyEfficiency": "%",
                       "renewableEnergyUsage": "%", "carbonOffset": "kg CO2e"},
    "comparisonStats": {"totalComparisons": "count", "modelsCompared": "count", "averageAccuracy": "%",
                        "averageSpeed": "as reported"},
}


@dataclass
class SlowFigures:
    window: EnergySums = field(default_factory=EnergySums)
    uptime_pct: float = float("nan")
    offsets_kg: float = 0.0
    total_energy_j: float = 0.0
    total_covered_s: float = 0.0


def _number(value: float, unavailable: list[str], name: str, digits: int = 2) -> float:
    """A finite JSON number rounded to ``digits`` decimals (negative: that many significant digits);
    NaN (not measured) becomes 0 and the field is listed as unavailable."""
    if value is None or not math.isfinite(value):
        unavailable.append(name)
        return 0
    if digits < 0:
        return float(f"{float(value):.{-digits}g}")
    return round(float(value), digits)


def build_stats(*, settings, now_s: float, current: dict[str, np.ndarray], latency_ms: float,
                latency_source: str, slow: SlowFigures, comparisons: dict[str, float], activity: figures.Activity,
                service: RequestSummary, grid, meter, gpu, gpu_readings) -> dict[str, Any]:
    unavailable: list[str] = []
    estimated: list[str] = []
    has_gpu = bool(gpu.gpus)
    last_load = figures.last_finite(current["load1"])
    logical = figures.last_finite(current["logical_cpus"])

    pue = settings.pue
    window = slow.window
    energy_kwh = figures.kwh(window.total_j * pue)
    carbon_g = figures.carbon_g(energy_kwh, grid.g_per_kwh)
    efficiency = figures.energy_efficiency_pct(window.cpu_j, window.cpu_active_j, window.gpu_j, window.gpu_idle_j)
    renewable = grid.renewable_pct
    green = figures.green_score(grid.g_per_kwh, efficiency, renewable)
    saved = figures.carbon_saved_kg(slow.total_energy_j * pue, slow.total_covered_s, grid.g_per_kwh,
                                    settings.baseline_power_w, settings.baseline_intensity)
    methods = current_methods(meter, gpu)
    modelled = not methods.metered
    if modelled:
        estimated += ["energyConsumption", "carbonFootprint", "energyEfficiency", "greenScore"]
        if saved is not None:
            estimated.append("totalCarbonSaved")

    stats = {
        "systemMetrics": {
            "cpuUsage": _number(figures.finite_mean(current["cpu_pct"]), unavailable, "cpuUsage"),
            "gpuUsage": _number(figures.finite_mean(current["gpu_pct"]) if has_gpu else math.nan,
                                unavailable, "gpuUsage"),
            "memoryUsage": _number(figures.last_finite(current["mem_pct"]), unavailable, "memoryUsage"),
            "networkLatency": _number(latency_ms, unavailable, "networkLatency", 3),
            "activeConnections": int(_number(figures.last_finite(current["tcp_estab"]), unavailable,
                                             "activeConnections")),
        },
        "liveStats": {
            "activeComparisons": int(comparisons.get("activeComparisons", 0)),
            "queueLength": int(comparisons.get("queueLength", 0)),
            "systemLoad": _number(figures.system_load_pct(last_load, logical), unavailable, "systemLoad"),
            "carbonFootprint": _number(carbon_g, unavailable, "carbonFootprint", -6),
            "energyConsumption": _number(energy_kwh, unavailable, "energyConsumption", -6),
            "uptime": _number(slow.uptime_pct, unavailable, "uptime", 3),
            "responseTime": _number(activity.response_ms, unavailable, "responseTime", 3),
            "errorRate": _number(activity.error_pct, unavailable, "errorRate", 3),
        },
        "sustainability": {
            "totalCarbonSaved": _number(saved if saved is not None else math.nan, unavailable,
                                        "totalCarbonSaved", -6),
            "greenScore": int(_number(green, unavailable, "greenScore", 0)),
            "energyEfficiency": _number(efficiency, unavailable, "energyEfficiency"),
            "renewableEnergyUsage": _number(renewable, unavailable, "renewableEnergyUsage"),
            "carbonOffset": _number(slow.offsets_kg, unavailable, "carbonOffset", -6),
        },
        "comparisonStats": {
            "totalComparisons": int(comparisons.get("totalComparisons", 0)),
            "modelsCompared": int(comparisons.get("modelsCompared", 0)),
            "averageAccuracy": _number(comparisons.get("averageAccuracy", 0.0), unavailable, "averageAccuracy"),
            "averageSpeed": _number(comparisons.get("averageSpeed", 0.0), unavailable, "averageSpeed"),
        },
    }
    stats["meta"] = {
        "generatedAt": rfc3339_ms(int(now_s * 1000)),
        "sampleIntervalMs": round(1000.0 / settings.sample_hz, 3),
        "windows": {
            "currentS": settings.current_window,
            "networkLatencyS": LATENCY_WINDOW_S,
            "reportS": settings.report_window,
            "availabilityS": settings.availability_window,
            "activityS": settings.activity_window,
        },
        "sources": {
            "system": "procfs",
            "networkLatency": latency_source,
            "gpu": "nvml" if has_gpu else "absent",
            "cpuPower": methods.cpu,
            "memoryPower": methods.memory,
            "gpuPower": methods.gpu,
            "cpuModel": {"name": meter.tdp.model, "tdpW": meter.tdp.tdp_w, "matched": meter.tdp.matched,
                         "rule": meter.tdp.rule},
            "grid": grid.meta(),
            "pue": pue,
            "baseline": {"powerW": settings.baseline_power_w, "gPerKwh": settings.baseline_intensity},
            "responseTime": "latencyMs of finished comparisons",
            "errorRate": "failed / (completed + failed) comparisons",
        },
        "activity": {"finished": activity.finished, "withLatency": activity.with_latency},
        "service": {"windowS": service.window_s, "requests": service.requests,
                    "meanResponseMs": round(service.mean_ms, 3),
                    "serverErrorPct": round(service.server_error_pct, 3)},
        "gpus": [
            {"index": info.index, "name": info.name, "unsupported": sorted(info.unsupported),
             "utilization": _gpu_value(gpu_readings, info.index, "utilization_pct"),
             "powerW": _gpu_value(gpu_readings, info.index, "power_w")}
            for info in gpu.gpus
        ],
        "unavailable": unavailable,
        "estimated": estimated,
        "units": UNITS,
    }
    return stats


def _gpu_value(readings, index: int, name: str) -> float | None:
    for reading in readings:
        if reading.index == index:
            value = getattr(reading, name)
            return round(value, 3) if math.isfinite(value) else None
    return None
