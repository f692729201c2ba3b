"""The one stand-in for the pynvml module over fake GPUs, for machines without an NVIDIA GPU (and to drive faults
on those with one): handed in to in-process services and readers as it is, and, for processes a test starts,
loaded by ``fake_modules/pynvml.py`` from the GPUs that ``FAKE_NVML_GPUS`` describes (``FakeGpu.from_json``)."""

from __future__ import annotations

import types

NOT_SUPPORTED = 3
NOT_FOUND = 6
DRIVER_NOT_LOADED = 9
UNKNOWN_ERROR = 999


class FakeNVMLError(Exception):
    def __init__(self, value):
        super().__init__(f"NVML error {value}")
        self.value = value


class FakeGpu:
    def __init__(self, name="Fake GPU", util=50, mem_used=1 << 30, mem_total=8 << 30, power_mw=100_000,
                 energy_mj=0, temperature=60, failing=False, unsupported=(), processes=None, sm_clock=1980,
                 mem_clock=2619, fan=40, throttle=0):
        """``processes``: {pid: (SM utilization %, GPU memory bytes)} running on this GPU."""
        self.processes = dict(processes or {})
        self.name = name
        self.util = util
        self.mem_used = mem_used
        self.mem_total = mem_total
        self.power_mw = power_mw
        self.energy_mj = energy_mj
        self.temperature = temperature
        self.sm_clock, self.mem_clock, self.fan, self.throttle = sm_clock, mem_clock, fan, throttle
        self.failing = failing
        self.unsupported = set(unsupported)
        self.calls = {}

    @classmethod
    def from_json(cls, gpu: dict) -> FakeGpu:
        """A GPU as ``FAKE_NVML_GPUS`` describes it: the constructor's names, ``processes`` as a list of {``pid``,
        ``sm``, ``memory``}; no ``energy_mj`` or ``fan``: not supported; ``process_utilization: false``: a driver
        that gives no per-process samples."""
        unsupported = [field for field, key in (("energy", "energy_mj"), ("fan", "fan")) if key not in gpu]
        if gpu.get("process_utilization", True) is False:
            unsupported.append("process_utilization")
        known = {key: gpu[key] for key in ("name", "util", "mem_used", "mem_total", "power_mw", "energy_mj",
                                           "temperature", "sm_clock", "mem_clock", "fan", "throttle") if key in gpu}
        processes = {p["pid"]: (p.get("sm", 0), p.get("memory", 0)) for p in gpu.get("processes", [])}
        return cls(**known, unsupported=unsupported, processes=processes)

    def value(self, field, value):
        self.calls[field] = self.calls.get(field, 0) + 1
        if self.failing:
            raise FakeNVMLError(UNKNOWN_ERROR)
        if field in self.unsupported:
            raise FakeNVMLError(NOT_SUPPORTED)
        return value


def fake_nvml(gpus: list[FakeGpu] | None, init_fails: bool = False) -> types.SimpleNamespace:
    """A stand-in for the pynvml module over ``gpus`` (None or init_fails: no driver)."""
    gpus = gpus or []

    def init():
        if init_fails:
            raise FakeNVMLError(DRIVER_NOT_LOADED)

    def process_samples(g, since):
        samples = g.value("process_utilization", [types.SimpleNamespace(pid=pid, smUtil=sm, memUtil=0,
                                                                         timeStamp=since + 1)
                                                   for pid, (sm, _) in g.processes.items()])
        if not samples:
            raise FakeNVMLError(NOT_FOUND)  # as the driver answers when no process has a sample since
        return samples

    return types.SimpleNamespace(
        NVML_ERROR_NOT_SUPPORTED=NOT_SUPPORTED,
        NVML_TEMPERATURE_GPU=0,
        NVMLError=FakeNVMLError,
        nvmlInit=init,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: "999.99",
        nvmlDeviceGetCount=lambda: len(gpus),
        nvmlDeviceGetHandleByIndex=lambda i: gpus[i],
        nvmlDeviceGetName=lambda g: g.name,
        nvmlDeviceGetUtilizationRates=lambda g: types.SimpleNamespace(gpu=g.value("utilization", g.util), memory=0),
        nvmlDeviceGetMemoryInfo=lambda g: g.value(
            "memory", types.SimpleNamespace(used=g.mem_used, total=g.mem_total, free=g.mem_total - g.mem_used)),
        nvmlDeviceGetPowerUsage=lambda g: g.value("power", g.power_mw),
        nvmlDeviceGetTotalEnergyConsumption=lambda g: g.value("energy", g.energy_mj),
        nvmlDeviceGetTemperature=lambda g, sensor: g.value("temperature", g.temperature),
        NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2,
        nvmlDeviceGetClockInfo=lambda g, kind: g.value("sm_clock" if kind == 1 else "memory_clock",
                                                      g.sm_clock if kind == 1 else g.mem_clock),
        nvmlDeviceGetFanSpeed=lambda g: g.value("fan", g.fan),
        nvmlDeviceGetCurrentClocksEventReasons=lambda g: g.value("throttle_reasons", g.throttle),
        NVML_ERROR_NOT_FOUND=NOT_FOUND,
        NVML_ERROR_DRIVER_NOT_LOADED=DRIVER_NOT_LOADED,
        nvmlDeviceGetProcessUtilization=process_samples,
        nvmlDeviceGetComputeRunningProcesses=lambda g: [
            types.SimpleNamespace(pid=pid, usedGpuMemory=memory) for pid, (_, memory) in g.processes.items()],
        nvmlDeviceGetGraphicsRunningProcesses=lambda g: [],
    )
