"""What an OTLP push names each figure, and the error when the SDK is missing."""

from __future__ import annotations

import sys

import pytest

from tsstats.api.otlp import require_sdk, semantic_of
from tsstats.core.settings import StartupError


def test_semantic_names_where_the_conventions_have_them_and_units_from_the_suffix_elsewhere():
    energy = semantic_of("tsstats_energy_joules")
    assert (energy.name, energy.unit, energy.renamed["component"]) == ("hw.energy", "J", "hw.type")
    assert semantic_of("tsstats_gpu_temperature_celsius").name == semantic_of("tsstats_cpu_temperature_celsius").name
    assert semantic_of("tsstats_cpu_usage_ratio").name == "system.cpu.utilization"
    own = {name: semantic_of(name) for name in ("tsstats_model_energy_joules", "tsstats_grid_intensity_grams_per_kwh",
                                                 "tsstats_sample_rate_hertz", "tsstats_comparisons")}
    assert {name: (found.name, found.unit) for name, found in own.items()} == {
        "tsstats_model_energy_joules": ("tsstats_model_energy_joules", "J"),
        "tsstats_grid_intensity_grams_per_kwh": ("tsstats_grid_intensity_grams_per_kwh", "g/kWh"),
        "tsstats_sample_rate_hertz": ("tsstats_sample_rate_hertz", "Hz"),
        "tsstats_comparisons": ("tsstats_comparisons", "1")}


def test_without_the_extra_the_service_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.metrics", None)  # an import of it fails
    with pytest.raises(StartupError, match=r"pip install 'tsstats\[otlp\]'"):
        require_sdk()
