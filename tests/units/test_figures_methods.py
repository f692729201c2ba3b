"""The power models used where no counter can be read."""

from __future__ import annotations

import pytest

from tsstats.figures.methods import cpu_model_power_w, dimm_model_power_w


def test_tdp_model_on_exact_inputs():
    assert cpu_model_power_w(100.0, 0.0) == pytest.approx(10.0)
    assert cpu_model_power_w(100.0, 0.5) == pytest.approx(100 * (0.1 + 0.9 * 0.125))
    assert cpu_model_power_w(100.0, 1.0) == pytest.approx(100.0)
    assert cpu_model_power_w(100.0, 1.7) == pytest.approx(100.0)

def test_dimm_model():
    assert dimm_model_power_w(None) == (10.0, 2)
    assert dimm_model_power_w(1) == (10.0, 2)
    assert dimm_model_power_w(8) == (40.0, 8)
