"""The power meter: RAPL at known wattages, the fallback to the TDP model, and GPU energy from NVML's counter
or its power."""

from __future__ import annotations

import math

import pytest
from support.nvml import FakeGpu, fake_nvml
from support.powercap import FakePowercap

from tsstats.figures.methods import METHOD_CPU_RAPL, METHOD_GPU_ENERGY, METHOD_GPU_POWER, METHOD_MEM_RAPL
from tsstats.sampling.meter import GpuEnergy, PowerMeter
from tsstats.sources.gpu import NvmlReader
from tsstats.sources.power import RaplReader, match_tdp


def test_meter_at_known_wattages_with_a_wrapping_counter(tmp_path):
    max_range = 50_000_000  # 50 J: wraps every second at 60 W
    tree = FakePowercap(tmp_path, packages=2, max_range_uj=max_range)
    tree.set("intel-rapl:0", max_range - 5_000_000)  # 5 J before the wrap
    rapl = RaplReader(str(tmp_path)).discover()
    meter = PowerMeter(rapl, match_tdp("", 1), None, has_gpu=False)
    watts = {"intel-rapl:0": 45.0, "intel-rapl:1": 15.0, "intel-rapl:0:2": 2.0, "intel-rapl:1:2": 1.5}
    counters = {entry: tree.get(entry) for entry in watts}
    cpu_j = mem_j = 0.0
    interval = 0.1
    wrapped = False
    for _ in range(50):  # 5 s at 10 Hz
        for entry, power in watts.items():
            counters[entry] += int(power * interval * 1e6)
            wrapped |= counters[entry] >= max_range
            tree.set(entry, counters[entry])
        sample = meter.measure(interval, 50.0, [])
        cpu_j += sample.cpu_j
        mem_j += sample.mem_j
        assert sample.methods & METHOD_CPU_RAPL and sample.methods & METHOD_MEM_RAPL
        assert sample.cpu_w == pytest.approx(60.0, rel=0.02)
    assert wrapped
    assert cpu_j == pytest.approx(60.0 * 5, rel=0.02)
    assert mem_j == pytest.approx(3.5 * 5, rel=0.02)


def test_unreadable_counter_falls_back_to_the_model(tmp_path):
    tree = FakePowercap(tmp_path, packages=2)
    tree.make_unreadable("intel-rapl:1")
    rapl = RaplReader(str(tmp_path)).discover()
    assert [d.name for d in rapl.unreadable] == ["intel-rapl:1 (package-1)"]
    assert not rapl.cpu_available  # a partial package reading would undercount
    meter = PowerMeter(rapl, match_tdp("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 40), 4, has_gpu=False)
    assert meter.cpu_method == "tdp_model"
    sample = meter.measure(1.0, 100.0, [])
    assert sample.cpu_j == pytest.approx(150.0)
    assert not sample.methods & METHOD_CPU_RAPL


def test_gpu_energy_from_the_counter():
    gpu = FakeGpu(power_mw=200_000, energy_mj=1_000_000)
    reader = NvmlReader(fake_nvml([gpu]))
    reader.start()
    energy = GpuEnergy()
    energy.measure(reader.read(), 0.1)  # first reading sets the base
    gpu.energy_mj += 20_000  # 20 J in 0.1 s: the counter is believed over power x time (20 J)
    gpu.power_mw = 150_000
    watts, joules, idle, per_gpu, methods = energy.measure(reader.read(), 0.1)
    assert joules == pytest.approx(20.0) and per_gpu == [pytest.approx(20.0)]
    assert methods == METHOD_GPU_ENERGY and watts == pytest.approx(150.0)
    assert idle == pytest.approx(15.0)  # idle floor so far: 150 W x 0.1 s


def test_gpu_energy_without_the_counter_integrates_power():
    gpus = [FakeGpu(power_mw=100_000, unsupported={"energy"}), FakeGpu(power_mw=50_000, unsupported={"energy"})]
    reader = NvmlReader(fake_nvml(gpus))
    reader.start()
    energy = GpuEnergy()
    total = 0.0
    for _ in range(10):
        _, joules, _, _, methods = energy.measure(reader.read(), 0.1)
        total += joules
        assert methods == METHOD_GPU_POWER
    assert total == pytest.approx(150.0 * 1.0)


def test_gpu_energy_with_no_gpu():
    watts, joules, idle, per_gpu, methods = GpuEnergy().measure([], 0.1)
    assert math.isnan(watts) and per_gpu == [] and methods == 0
