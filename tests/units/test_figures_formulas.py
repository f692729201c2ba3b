"""The pure figures on exact inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tsstats.figures import formulas


def test_uptime_counts_gaps_inside_the_window():
    day = 86_400_000.0
    now = 10 * day
    outages = np.array([[now - 2 * day, now - 1.5 * day], [now - 40 * day, now - 39 * day]])
    # the window is since the first sample (5 days ago): half a day down of five
    assert formulas.uptime_pct(now, now - 5 * day, 30 * day, outages) == pytest.approx(90.0)
    # a gap straddling the window's start counts only where it overlaps
    assert formulas.uptime_pct(now, 0.0, 1 * day, np.array([[now - 2 * day, now - 0.75 * day]])) == \
        pytest.approx(75.0)
    assert formulas.uptime_pct(now, now - day, 30 * day, np.empty((0, 2))) == 100.0
    assert np.isnan(formulas.uptime_pct(now, None, day, np.empty((0, 2))))


def test_outages_come_from_monotonic_intervals_and_restarts():
    ts = np.array([1000.0, 1100.0, 4700.0, 4800.0, 14800.0])
    intervals = np.array([0.1, 0.1, 0.1, 0.1, 10.0])  # the wall clock stepped 3.5 s; then 10 s without sampling
    assert formulas.find_outages(ts, intervals, None, 5000.0).tolist() == [[4800.0, 14800.0]]
    # after a restart, the wall-clock gap to the newest stored sample is the outage
    assert formulas.find_outages(ts, intervals, -9000.0, 5000.0).tolist() == [[-9000.0, 1000.0], [4800.0, 14800.0]]
    assert formulas.find_outages(ts, intervals, 0.0, 5000.0).tolist() == [[4800.0, 14800.0]]  # 1 s: no outage
    assert formulas.find_outages(np.array([5.0]), np.array([np.nan]), None, 200.0).shape == (0, 2)


def test_carbon_is_energy_times_intensity():
    assert formulas.carbon_kg(2.0, 473.0) == pytest.approx(0.946)
    assert formulas.kwh(3.6e6) == 1.0


def test_green_score_formula():
    # S_I = 100 * clamp(1 - 236.5 / 946, 0, 1) = 75
    assert formulas.intensity_score(236.5) == pytest.approx(75.0)
    assert formulas.green_score(236.5, 60.0, 40.0) == round(0.5 * 75 + 0.3 * 60 + 0.2 * 40)
    assert formulas.intensity_score(2000.0) == 0.0 and formulas.intensity_score(0.0) == 100.0
    assert formulas.green_score(0.0, 100.0, 100.0) == 100.0


def test_energy_efficiency_formula():
    # CPU: 100 J at 30% busy -> 30 J active; GPU: 200 J with a 50 J idle floor -> 150 J active
    assert formulas.energy_efficiency_pct(100.0, 30.0, 200.0, 50.0) == pytest.approx(100 * 180 / 300)
    assert formulas.energy_efficiency_pct(0.0, 0.0, 0.0, 0.0) == 0.0
    assert formulas.energy_efficiency_pct(10.0, 5.0, 1.0, 2.0) == pytest.approx(100 * 5 / 11)


def test_carbon_saved_against_baselines():
    joules = 3.6e6  # 1 kWh over 1 hour
    assert formulas.carbon_saved_kg(joules, 3600, 400.0, None, None) is None
    # baseline power 2 kW for that hour at the same grid: 2 kWh vs 1 kWh
    assert formulas.carbon_saved_kg(joules, 3600, 400.0, 2000.0, None) == pytest.approx(0.4)
    # baseline intensity 600 g/kWh for the same energy
    assert formulas.carbon_saved_kg(joules, 3600, 400.0, None, 600.0) == pytest.approx(0.2)
    assert formulas.carbon_saved_kg(joules, 3600, 400.0, 2000.0, 600.0) == pytest.approx(1.2 - 0.4)


def test_attribution_to_two_overlapping_comparisons():
    ts = np.arange(0.0, 10_000.0, 1000.0)  # samples at 0, 1 s, ..., 9 s
    energy = np.full(ts.shape, 10.0)  # 10 J each
    # A runs 0..9 s, B runs 3..6 s: B's samples at 3, 4, 5, 6 s are shared by two
    starts, ends = np.array([0.0, 3000.0]), np.array([9000.0, 6000.0])
    a = formulas.shared_energy_j(ts, energy, 0.0, 9000.0, starts, ends).sum()
    b = formulas.shared_energy_j(ts, energy, 3000.0, 6000.0, starts, ends).sum()
    assert b == pytest.approx(4 * 5.0)
    assert a == pytest.approx(6 * 10.0 + 4 * 5.0)
    assert a + b == pytest.approx(energy.sum())  # nothing counted twice, nothing lost


def test_running_counts():
    counts = formulas.running_counts(np.array([0.0, 5.0, 10.0]), np.array([0.0, 5.0]), np.array([10.0, 7.0]))
    assert counts.tolist() == [1, 2, 1]


def test_comparison_activity_from_outcomes():
    activity = formulas.comparison_activity(formulas.Outcomes(finished=4, with_latency=3, latency_sum_ms=600.0,
                                                            completed=2, failed=1))
    assert activity.response_ms == pytest.approx(200.0) and activity.error_pct == pytest.approx(100.0 / 3)
    assert (activity.finished, activity.with_latency) == (4, 3)
    none = formulas.comparison_activity(formulas.Outcomes())
    assert none.finished == 0 and math.isnan(none.response_ms) and math.isnan(none.error_pct)
    only_cancelled = formulas.comparison_activity(formulas.Outcomes(finished=1))
    assert math.isnan(only_cancelled.error_pct) and math.isnan(only_cancelled.response_ms)


def test_values_rounded_to_significant_digits_match_their_text_and_carry_no_noise():
    from tsstats.figures.formulas import round_significant

    values = np.array([0.1 + 0.2, 473.00000000000006, 30.503999999999998, -1234.5678901234, 9.87654321e-5,
                       123456789012345.0, 0.0, np.nan, np.inf, 1e-300])
    rounded = round_significant(values, 10)
    for value, got in zip(values.tolist(), rounded.tolist(), strict=True):
        if not np.isfinite(value) or abs(value) < 1e-12:
            assert got == value or (np.isnan(got) and np.isnan(value))
        else:
            assert got == float(f"{value:.10g}") and repr(got) == repr(float(f"{value:.10g}")), (value, got)
    assert repr(rounded[0]) in ("0.3", "np.float64(0.3)") and rounded[1] == 473.0


def test_embodied_carbon_is_amortised_over_time_and_share():
    year = 365.25 * 86400
    assert formulas.embodied_g(400.0, 4.0, year, 1.0) == pytest.approx(100_000.0)  # a quarter of 400 kg
    assert formulas.embodied_g(400.0, 4.0, year, 0.25) == pytest.approx(25_000.0)
    assert formulas.embodied_g(400.0, 4.0, -1.0, 1.0) == 0.0 and formulas.embodied_g(400.0, 4.0, year, 7.0) == \
        pytest.approx(100_000.0)


def test_per_item_and_sci():
    assert formulas.per_item(10.0, 4) == 2.5
    assert formulas.per_item(10.0, None) is None and formulas.per_item(None, 4) is None
    assert formulas.per_item(1.0, 0) is None
    assert formulas.sci_per_item(8.0, 2.0, 5) == 2.0
    assert formulas.sci_per_item(8.0, None, 4) == 2.0  # no embodied carbon declared: operational only
    assert formulas.sci_per_item(None, 2.0, 4) is None
