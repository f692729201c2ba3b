"""What a study waits for before each trial: a reading of the machine that is quiet, and cool against the study's
first quiet reading (``Study._unsettled`` on readings as ``GET /api/conditions`` gives them)."""

from __future__ import annotations

from tsstats.client.service import ServiceClient
from tsstats.client.study import COOL_MARGIN_C, Contender, Study, StudyOptions


def reading(contention: float = 2.0, cpu_c: float | None = 50.0, gpus: dict[str, float] | None = None) -> dict:
    return {"takenAtMs": 1, "contentionPct": contention, "quiet": contention <= 10, "limits": {"contentionPct": 10},
            "cpuTemperatureC": cpu_c, "gpuTemperatureC": gpus or {}}


def study() -> Study:
    never = Contender("x", None, lambda: 0)
    return Study([never, never], StudyOptions(), ServiceClient("http://127.0.0.1:9"))


def test_a_busy_machine_is_not_quiet_whatever_its_temperatures():
    assert study()._unsettled(reading(contention=34.2)) == "contention 34 % > 10 %"


def test_before_the_first_quiet_reading_any_temperature_will_do():
    assert study()._unsettled(reading(cpu_c=90.0, gpus={"0": 80.0})) is None


def test_temperatures_must_come_back_within_the_margin_of_the_first_quiet_reading():
    waiting = study()
    waiting.reference = reading(cpu_c=50.0, gpus={"0": 40.0, "1": 45.0})
    assert waiting._unsettled(reading(cpu_c=50.0 + COOL_MARGIN_C, gpus={"0": 40.0, "1": 45.0})) is None
    hot_cpu = waiting._unsettled(reading(cpu_c=54.0, gpus={"0": 40.0, "1": 45.0}))
    assert hot_cpu == "cpu at 54 °C, above 50 + 3 °C of the first quiet reading"
    hot_gpu = waiting._unsettled(reading(cpu_c=50.0, gpus={"0": 40.0, "1": 49.0}))
    assert hot_gpu is not None and hot_gpu.startswith("gpu 1 at 49 °C")


def test_a_temperature_unknown_on_either_side_judges_nothing():
    waiting = study()
    waiting.reference = reading(cpu_c=None, gpus={"0": 40.0})
    assert waiting._unsettled(reading(cpu_c=95.0, gpus={"0": 41.0, "1": 99.0})) is None
