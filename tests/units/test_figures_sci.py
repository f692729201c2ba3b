"""Software Carbon Intensity: (E x I + M) / R, with M amortised over the run's time and share."""

from __future__ import annotations

import pytest

from tsstats.figures import sci


def test_embodied_carbon_is_amortised_over_time_and_share():
    year = 365.25 * 86400
    assert sci.embodied_g(400.0, 4.0, year, 1.0) == pytest.approx(100_000.0)  # a quarter of 400 kg
    assert sci.embodied_g(400.0, 4.0, year, 0.25) == pytest.approx(25_000.0)
    assert sci.embodied_g(400.0, 4.0, -1.0, 1.0) == 0.0 and sci.embodied_g(400.0, 4.0, year, 7.0) == \
        pytest.approx(100_000.0)


def test_per_item_and_sci():
    assert sci.per_item(10.0, 4) == 2.5
    assert sci.per_item(10.0, None) is None and sci.per_item(None, 4) is None and sci.per_item(1.0, 0) is None
    assert sci.sci_per_item(8.0, 2.0, 5) == 2.0
    assert sci.sci_per_item(8.0, None, 4) == 2.0  # no embodied carbon declared: operational only
    assert sci.sci_per_item(None, 2.0, 4) is None
