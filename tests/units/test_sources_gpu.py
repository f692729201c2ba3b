"""The GPU readers behind one interface: AMD SMI over its fake, and NVIDIA and AMD GPUs read together."""

from __future__ import annotations

import math

import pytest
from support.amdsmi import fake_amdsmi
from support.nvml import FakeGpu, fake_nvml

from tsstats.assembly import open_gpus
from tsstats.sources.gpu import AmdSmiReader


def test_amd_smi_reads_every_field(monkeypatch):
    smi = fake_amdsmi([{"name": "Fake MI300X", "gfx": 87, "vram_used_mib": 2048, "power_w": 512,
                        "energy_uj": 3_000_000, "temperature": 71, "processes": {"4242": 1 << 30}}], monkeypatch)
    reader = AmdSmiReader(smi)
    assert reader.start() and reader.driver_version == "6.10.5"
    assert [(g.index, g.name, g.library) for g in reader.gpus] == [(0, "Fake MI300X", "amdsmi")]
    reading = reader.read()[0]
    assert reading.ok and reading.utilization_pct == 87 and reading.memory_used_bytes == 2048 * 1024 * 1024
    assert (reading.power_w, reading.energy_counter_j, reading.temperature_c) == (512, 3.0, 71)
    use = reader.process_use(0)
    assert use is not None and use.method == "memory" and use.by_pid == {4242: float(1 << 30)}
    reader.stop()


def test_amd_smi_fields_it_does_not_give_are_unavailable_and_not_asked_again(monkeypatch):
    smi = fake_amdsmi([{"gfx": "N/A", "energy_uj": "unsupported", "edge": False, "temperature": 90}], monkeypatch)
    reader = AmdSmiReader(smi)
    reader.start()
    reading = reader.read()[0]
    assert reading.ok  # unsupported is not a failure
    assert math.isnan(reading.utilization_pct) and math.isnan(reading.energy_counter_j)
    assert reading.temperature_c == 90  # no edge sensor: the hotspot
    assert {"utilization", "energy"} <= reader.gpus[0].unsupported and not reader.energy_supported(0)


def test_no_amd_driver_is_no_gpu_not_an_error(monkeypatch):
    reader = AmdSmiReader(fake_amdsmi([], monkeypatch))
    assert not reader.start() and reader.gpus == [] and "AMD SMI unavailable" in reader.error


def test_a_machine_with_both_kinds_reads_both(monkeypatch):
    nvml = fake_nvml([FakeGpu(name="Fake H200", util=30)])
    smi = fake_amdsmi([{"name": "Fake MI300X", "gfx": 60}], monkeypatch)
    gpus = open_gpus(nvml, smi)
    assert gpus.name == "nvml+amdsmi"
    assert [(g.index, g.name, g.library) for g in gpus.gpus] == [(0, "Fake H200", "nvml"), (1, "Fake MI300X", "amdsmi")]
    assert [(r.index, r.utilization_pct) for r in gpus.read()] == [(0, 30.0), (1, 60.0)]
    assert gpus.process_use(1) is not None and gpus.process_use(1).method == "memory"
    gpus.stop()


@pytest.mark.parametrize("nvidia, amd, name", [(True, False, "nvml"), (False, True, "amdsmi"),
                                               (False, False, "absent")])
def test_one_kind_or_none(monkeypatch, nvidia, amd, name):
    nvml = fake_nvml([FakeGpu()] if nvidia else None, init_fails=not nvidia)
    gpus = open_gpus(nvml, fake_amdsmi([{"gfx": 1}] if amd else [], monkeypatch))
    assert gpus.name == name and len(gpus.gpus) == int(nvidia) + int(amd)
    if name == "absent":
        assert "NVML unavailable" in gpus.error and "AMD SMI unavailable" in gpus.error
