"""The dashboard's rendering of ``Figures``: the body of ``GET /api/dashboard/stats``, the four objects of its
format plus ``meta``. A figure that could not be measured is sent as 0 and listed in ``meta.unavailable``."""

from __future__ import annotations

import json
import math
from typing import Any

from tsstats.core.inputs import rfc3339_ms
from tsstats.figures.formulas import finite_or_none, rounded
from tsstats.figures.moment import LATENCY_WINDOW_S, Figures, FootprintNow

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
    "enterpriseMetrics": {"modelAccuracy": "%", "processingSpeed": "as reported", "systemUptime": "%",
                          "successRate": "%", "responseTime": "ms", "queueLength": "count",
                          "concurrentComparisons": "count", "dataThroughput": "items/s"},
}


def _number(value: float, unavailable: list[str], name: str, digits: int = 2) -> float:
    """A finite JSON number rounded to ``digits`` decimals (negative: that many significant digits);
    NaN (not measured) becomes 0 and the field is listed as unavailable."""
    if value is None or not math.isfinite(value):
        unavailable.append(name)
        return 0
    if digits < 0:
        return float(f"{float(value):.{-digits}g}")
    return round(float(value), digits)


def _optional(value: float) -> float | None:
    return finite_or_none(value, 3)


def render_dashboard(f: Figures) -> dict[str, Any]:
    unavailable: list[str] = []
    comparisons, energy, activity = f.comparisons, f.energy, f.activity
    stats: dict[str, Any] = {
        "systemMetrics": {
            "cpuUsage": _number(f.cpu_pct, unavailable, "cpuUsage"),
            "gpuUsage": _number(f.gpu_pct, unavailable, "gpuUsage"),
            "memoryUsage": _number(f.memory_pct, unavailable, "memoryUsage"),
            "networkLatency": _number(f.network_latency_ms, unavailable, "networkLatency", 3),
            "activeConnections": int(_number(f.tcp_established, unavailable, "activeConnections")),
        },
        "liveStats": {
            "activeComparisons": comparisons.running,
            "queueLength": comparisons.queued,
            "systemLoad": _number(f.system_load_pct, unavailable, "systemLoad"),
            "carbonFootprint": _number(energy.carbon_g, unavailable, "carbonFootprint", -6),
            "energyConsumption": _number(energy.total_kwh, unavailable, "energyConsumption", -6),
            "uptime": _number(f.uptime_pct, unavailable, "uptime", 2),
            "responseTime": _number(f.activity.response_ms, unavailable, "responseTime", 3),
            "errorRate": _number(f.activity.error_pct, unavailable, "errorRate", 2),
        },
        "sustainability": {
            "totalCarbonSaved": _number(f.carbon_saved_kg, unavailable, "totalCarbonSaved", -6),
            "greenScore": int(_number(f.green_score, unavailable, "greenScore", 0)),
            "energyEfficiency": _number(f.efficiency_pct, unavailable, "energyEfficiency"),
            "renewableEnergyUsage": _number(f.renewable_pct, unavailable, "renewableEnergyUsage"),
            "carbonOffset": _number(f.offsets_kg, unavailable, "carbonOffset", -6),
        },
        "comparisonStats": {
            "totalComparisons": comparisons.completed,
            "modelsCompared": comparisons.models,
            "averageAccuracy": _number(comparisons.accuracy_pct, unavailable, "averageAccuracy"),
            "averageSpeed": _number(comparisons.speed, unavailable, "averageSpeed"),
        },
        "enterpriseMetrics": {
            "modelAccuracy": _number(activity.accuracy_pct, unavailable, "enterpriseMetrics.modelAccuracy"),
            "processingSpeed": _number(activity.speed, unavailable, "enterpriseMetrics.processingSpeed"),
            "systemUptime": _number(f.uptime_pct, unavailable, "enterpriseMetrics.systemUptime", 2),
            "successRate": _number(100.0 - activity.error_pct, unavailable, "enterpriseMetrics.successRate", 2),
            "responseTime": _number(activity.response_ms, unavailable, "enterpriseMetrics.responseTime", 3),
            "queueLength": comparisons.queued,
            "concurrentComparisons": comparisons.running,
            "dataThroughput": _number(activity.items_per_s, unavailable, "enterpriseMetrics.dataThroughput", 3),
        },
    }
    stats["meta"] = render_meta(f, unavailable)
    return stats


def render_meta(f: Figures, unavailable: list[str]) -> dict[str, Any]:
    """``meta``: when and how each figure was obtained, what this machine cannot measure, the units."""
    tdp, service = f.tdp, f.service
    return {
        "generatedAt": rfc3339_ms(f.generated_ms),
        "sampleIntervalMs": round(f.windows.sample_interval_ms, 3),
        "sampling": {"hz": f.rate.hz, "fullHz": f.rate.full_hz, "idleHz": f.rate.idle_hz,
                     "fullBecause": list(f.rate.full_because)},
        "footprint": render_footprint(f.footprint),
        "windows": {
            "currentS": f.windows.current_s,
            "networkLatencyS": LATENCY_WINDOW_S,
            "reportS": f.windows.report_s,
            "availabilityS": f.windows.availability_s,
            "activityS": f.windows.activity_s,
        },
        "sources": {
            "system": f.system_source,
            "conditions": {group: source or "unavailable" for group, source in f.condition_sources},
            "networkLatency": f.latency_source,
            "gpu": "+".join(dict.fromkeys(gpu.library for gpu in f.gpus)) or "absent",
            "cpuPower": f.methods.cpu.value,
            "memoryPower": f.methods.memory.value,
            "gpuPower": f.methods.gpu.value,
            "cpuModel": {"name": tdp.model, "tdpW": tdp.tdp_w, "matched": tdp.matched, "rule": tdp.rule},
            "grid": {**f.grid.meta(), "samplesOutside": f.grid_outside},
            "pue": f.accounting.pue,
            "baseline": {"powerW": f.accounting.baseline_power_w, "gPerKwh": f.accounting.baseline_intensity},
            "responseTime": "latencyMs of finished comparisons",
            "errorRate": "failed / (completed + failed) comparisons",
        },
        "activity": {"finished": f.activity.finished, "withLatency": f.activity.with_latency},
        "service": {"windowS": service.window_s, "requests": service.requests,
                    "meanResponseMs": round(service.mean_ms, 3),
                    "serverErrorPct": round(service.server_error_pct, 3)},
        "gpus": [{"index": gpu.index, "name": gpu.name, "library": gpu.library, "unsupported": list(gpu.unsupported),
                  "utilization": _optional(gpu.utilization_pct), "powerW": _optional(gpu.power_w)}
                 for gpu in f.gpus],
        "unavailable": unavailable,
        "estimated": list(f.estimated),
        "units": UNITS,
    }


def render_footprint(footprint: FootprintNow) -> dict[str, Any]:
    """tsstats' own cost since its sampler was built: CPU (seconds, by part, and the mean % of one core), resident
    memory, and energy by a run's attribution (joules before PUE, and the mean power)."""
    return {"seconds": round(footprint.seconds, 3), "cpuS": round(footprint.cpu_s, 6),
            "cpuPct": finite_or_none(footprint.cpu_pct, 4),
            "cpuByPartS": {part: round(seconds, 6) for part, seconds in footprint.cpu_by_part_s},
            "residentBytes": finite_or_none(footprint.resident_bytes, 0),
            "energyJ": rounded(footprint.energy_j), "powerW": finite_or_none(footprint.power_w, 6)}


def dashboard_body(figures: Figures) -> bytes:
    return json.dumps(render_dashboard(figures), separators=(",", ":"), allow_nan=False).encode()
