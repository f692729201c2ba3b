"""Whether a run was fair: each reason against its limit, and what is unavailable judges nothing."""

from __future__ import annotations

import math

import pytest

from tsstats.figures.energy import Attributed
from tsstats.figures.fairness import MIB, CpuShares, RunConditions, cpu_shares, gpu_contention, unfair_reasons

NAN = math.nan


def conditions(**changes) -> RunConditions:
    values = {"peak_cpu_temperature_c": 70.0, "peak_gpu_temperature_c": NAN, "cpu_throttled_s": 0.0,
              "cpu_frequency_pct": 95.0, "swap_in_bytes": 0.0, "steal_pct": 0.5,
              "cpu": CpuShares(contention_pct=4.0, wait_pct=2.0, denied_pct=1.0, service_pct=0.3)}
    return RunConditions(**{**values, **changes})


def test_a_quiet_run_is_fair():
    assert unfair_reasons(conditions(), 10) == []


def test_each_reason_is_named_with_its_figure():
    reasons = unfair_reasons(conditions(cpu=CpuShares(34.2, 50.0, 40.4, 0.5), steal_pct=12.0, cpu_throttled_s=12.0,
                                        swap_in_bytes=3 * MIB), 10)
    assert reasons == ["contention 34 % > 10 %", "cpu denied 40 % > 10 %", "steal 12 % > 10 %",
                       "cpu throttled 12 s", "swapped in 3.0 MiB"]


def test_gpu_contention_and_throttling_are_reasons_by_gpu():
    found = conditions(gpu_contention_pct={0: 3.0, 1: 40.0}, gpu_throttled_s=2.0,
                       gpu_throttle_reasons=("SwPowerCap",), peak_gpu_memory_mib=1024.0)
    assert unfair_reasons(found, 10) == ["gpu 1 contention 40 % > 10 %", "gpu throttled 2 s (SwPowerCap)"]
    shown = found.as_dict(10)
    assert shown["gpuContentionPct"] == 40.0 and shown["gpuContentionByGpu"] == {"0": 3.0, "1": 40.0}
    assert shown["peakGpuMemoryMiB"] == 1024.0


def test_limits_are_strict_and_a_throttled_instant_counts_as_a_second():
    assert unfair_reasons(conditions(cpu=CpuShares(10.0, 10.0, 10.0, 10.0)), 10) == []
    assert unfair_reasons(conditions(cpu_throttled_s=0.1), 10) == ["cpu throttled 1 s"]


def test_unavailable_figures_judge_nothing_and_are_listed():
    found = conditions(cpu=CpuShares(), steal_pct=NAN, cpu_throttled_s=NAN)
    assert unfair_reasons(found, 10) == []
    shown = found.as_dict(10)
    assert shown["contentionPct"] is None and "contentionPct" in shown["unavailable"]
    assert {"cpuWaitPct", "cpuDeniedPct", "serviceCpuPct"} <= set(shown["unavailable"])
    assert "peakGpuTemperatureC" in shown["unavailable"] and shown["limits"] == {"contentionPct": 10}


def test_gpu_contention_share():
    assert gpu_contention({0: 30.0}, {0: 100.0, 1: 50.0}) == {0: 70.0, 1: 100.0}
    assert gpu_contention({0: 120.0}, {0: 100.0}) == {0: 0.0}  # clipped: samples read at different instants
    assert gpu_contention({}, {0: 0.0}) == {}


def window(tree: float, busy: float, capacity: float, wait: float = 0.0, service: float = 0.0,
           steal: float = 0.0) -> Attributed:
    """A followed window's CPU reads, in ticks."""
    return Attributed(tree_cpu=tree, busy_cpu=busy, capacity_cpu=capacity, tree_wait=wait, service_cpu=service,
                      steal_cpu=steal)


def test_a_gpu_bound_run_beside_light_background_is_fair():
    # 10 s on 2 CPUs (2000 ticks): the run's tree used 2 % of the CPU, the background 3 %, tsstats 0.5 %
    shares = cpu_shares(window(tree=40.0, busy=110.0, capacity=2000.0, wait=1.0, service=10.0))
    assert shares.contention_pct == pytest.approx(3.0) and shares.service_pct == pytest.approx(0.5)
    assert shares.denied_pct < 10 and unfair_reasons(conditions(cpu=shares), 10) == []


def test_a_sleeping_run_on_a_quiet_machine_is_fair():
    shares = cpu_shares(window(tree=0.0, busy=20.0, capacity=2000.0, wait=0.0, service=10.0))
    assert shares.contention_pct == pytest.approx(0.5) and math.isnan(shares.wait_pct)
    assert unfair_reasons(conditions(cpu=shares), 10) == []


def test_a_cpu_bound_run_beside_a_burner_is_not():
    # one CPU: the run and a burner each got half of it, and the run waited the other half
    shares = cpu_shares(window(tree=500.0, busy=1000.0, capacity=1000.0, wait=500.0))
    assert shares.contention_pct == pytest.approx(50.0) and shares.denied_pct == pytest.approx(50.0)
    assert unfair_reasons(conditions(cpu=shares), 10) == ["contention 50 % > 10 %", "cpu denied 50 % > 10 %"]
    # eight CPUs, the burner on one of them: little of the machine, yet the run waited for it
    shares = cpu_shares(window(tree=7000.0, busy=8000.0, capacity=8000.0, wait=1000.0))
    assert shares.contention_pct == pytest.approx(12.5) and shares.denied_pct == pytest.approx(12.5)


def test_waiting_on_its_own_threads_is_not_denied():
    # 16 busy threads on 8 CPUs of a quiet machine: half their time waiting, for each other
    shares = cpu_shares(window(tree=7980.0, busy=8000.0, capacity=8000.0, wait=7980.0, service=10.0))
    assert shares.wait_pct == pytest.approx(50.0) and shares.denied_pct == pytest.approx(100 * 10 / 15960)
    assert unfair_reasons(conditions(cpu=shares), 10) == []


def test_steal_and_the_service_are_not_others_and_unknown_figures_are_nan():
    shares = cpu_shares(window(tree=100.0, busy=400.0, capacity=1000.0, steal=200.0, service=100.0))
    assert shares.contention_pct == 0.0 and shares.service_pct == pytest.approx(10.0)
    unknown = cpu_shares(window(tree=100.0, busy=400.0, capacity=1000.0, wait=NAN, service=NAN))
    assert unknown.contention_pct == pytest.approx(30.0) and math.isnan(unknown.denied_pct)
    assert math.isnan(unknown.service_pct) and math.isnan(cpu_shares(Attributed()).contention_pct)
