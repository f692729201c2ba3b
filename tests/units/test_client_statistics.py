"""The statistics of a study, against published values and by simulation: Student's t quantiles and tails, the
false-positive rate of an A/A comparison near the stated 5 %, a doubled mean called significant with an
interval that holds 2, intervals that narrow as trials are added, and the warnings' rules."""

from __future__ import annotations

import math
import random

import pytest

from tsstats.client.statistics import describe, outliers, ratio, slow_first, t_quantile, t_two_sided_p


@pytest.mark.parametrize(("df", "quantile"), [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045),
                                               (120, 1.980)])
def test_t_quantiles_match_the_published_table(df, quantile):
    assert t_quantile(0.975, df) == pytest.approx(quantile, abs=5e-4)


def test_t_tails_match_known_values():
    assert t_two_sided_p(2.0, 10) == pytest.approx(0.07339, abs=1e-5)
    assert t_two_sided_p(0.0, 5) == pytest.approx(1.0)
    assert t_two_sided_p(math.inf, 5) == 0.0


def test_describe_gives_the_mean_spread_and_interval():
    found = describe([10.0, 12.0, 14.0])
    assert (found.n, found.mean, found.stdev, found.minimum, found.maximum) == (3, 12.0, 2.0, 10.0, 14.0)
    half = 4.303 * 2.0 / math.sqrt(3)
    assert found.ci_low == pytest.approx(12.0 - half, abs=1e-3)
    assert found.ci_high == pytest.approx(12.0 + half, abs=1e-3)


def test_an_a_a_comparison_is_called_significant_about_5_percent_of_the_time():
    rng = random.Random(7)
    trials = 2000
    positives = sum(ratio([rng.gauss(10, 1) for _ in range(6)], [rng.gauss(10, 1) for _ in range(6)]).significant
                    for _ in range(trials))
    assert 0.03 <= positives / trials <= 0.07


def test_twice_the_work_is_significant_and_the_interval_holds_2_and_narrows_with_trials():
    rng = random.Random(3)
    held, widths = 0, []
    for runs in (5, 20, 80):
        for _ in range(100):
            base = [rng.gauss(1.0, 0.05) for _ in range(runs)]
            double = [rng.gauss(2.0, 0.1) for _ in range(runs)]
            found = ratio(base, double)
            assert found.significant
            held += found.ci_low <= 2.0 <= found.ci_high
        widths.append(found.ci_high - found.ci_low)
    assert held >= 0.9 * 300  # a 95 % interval holds the truth about 95 % of the time
    assert widths[0] > widths[1] > widths[2]


def test_outliers_and_a_slow_first_trial_follow_their_rules():
    assert outliers([1.0, 1.01, 0.99, 1.02, 0.98, 3.0]) == [5]
    assert outliers([1.0, 1.01, 5.0]) == []  # too few values to call any an outlier
    assert slow_first([2.0, 1.0, 1.1, 0.9]) and not slow_first([1.2, 1.0, 1.1, 0.9])
