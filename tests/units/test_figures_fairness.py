"""Whether a run was fair: each reason against its limit, and what is unavailable judges nothing."""

from __future__ import annotations

import math

from tsstats.figures.fairness import MIB, RunConditions, contention_pct, unfair_reasons

NAN = math.nan


def conditions(**changes) -> RunConditions:
    values = {"peak_cpu_temperature_c": 70.0, "peak_gpu_temperature_c": NAN, "cpu_throttled_s": 0.0,
              "cpu_frequency_pct": 95.0, "swap_in_bytes": 0.0, "steal_pct": 0.5, "contention_pct": 4.0}
    return RunConditions(**{**values, **changes})


def test_a_quiet_run_is_fair():
    assert unfair_reasons(conditions(), 10) == []


def test_each_reason_is_named_with_its_figure():
    reasons = unfair_reasons(conditions(contention_pct=34.2, steal_pct=12.0, cpu_throttled_s=12.0,
                                        swap_in_bytes=3 * MIB), 10)
    assert reasons == ["contention 34 % > 10 %", "steal 12 % > 10 %", "cpu throttled 12 s", "swapped in 3.0 MiB"]


def test_gpu_contention_and_throttling_are_reasons_by_gpu():
    found = conditions(gpu_contention_pct={0: 3.0, 1: 40.0}, gpu_throttled_s=2.0,
                       gpu_throttle_reasons=("SwPowerCap",), peak_gpu_memory_mib=1024.0)
    assert unfair_reasons(found, 10) == ["gpu 1 contention 40 % > 10 %", "gpu throttled 2 s (SwPowerCap)"]
    shown = found.as_dict(10)
    assert shown["gpuContentionPct"] == 40.0 and shown["gpuContentionByGpu"] == {"0": 3.0, "1": 40.0}
    assert shown["peakGpuMemoryMiB"] == 1024.0


def test_limits_are_strict_and_a_throttled_instant_counts_as_a_second():
    assert unfair_reasons(conditions(contention_pct=10.0), 10) == []
    assert unfair_reasons(conditions(cpu_throttled_s=0.1), 10) == ["cpu throttled 1 s"]


def test_unavailable_figures_judge_nothing_and_are_listed():
    found = conditions(contention_pct=NAN, steal_pct=NAN, cpu_throttled_s=NAN)
    assert unfair_reasons(found, 10) == []
    shown = found.as_dict(10)
    assert shown["contentionPct"] is None and "contentionPct" in shown["unavailable"]
    assert "peakGpuTemperatureC" in shown["unavailable"] and shown["limits"] == {"contentionPct": 10}


def test_contention_share():
    assert contention_pct(30.0, 100.0) == 70.0
    assert contention_pct(120.0, 100.0) == 0.0  # clipped: ticks read at slightly different instants
    assert math.isnan(contention_pct(0.0, 0.0))
