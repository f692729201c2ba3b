"""A stand-in for nvidia-ml-py, for servers and commands that tests start as processes.

Tests put this folder first on PYTHONPATH, so such a process sees the GPUs described by the environment
variable ``FAKE_NVML_GPUS`` (a JSON list of objects with ``name``, ``util``, ``power_mw``, ``energy_mj``,
``mem_used``, ``mem_total``, ``temperature``, ``sm_clock``, ``mem_clock``, ``fan`` (absent: not supported),
``throttle`` (the clocks-event reasons' bit mask), and ``processes``: a list of {``pid``, ``sm``, ``memory``},
with ``process_utilization: false`` for a driver that gives no per-process samples), whatever the host has.
Unset or empty: no driver.
"""

import json
import os
import types

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_TEMPERATURE_GPU = 0


class NVMLError(Exception):
    def __init__(self, value):
        super().__init__(f"NVML error {value}")
        self.value = value


def _gpus() -> list[dict]:
    return json.loads(os.environ.get("FAKE_NVML_GPUS") or "[]")


def nvmlInit():
    if not _gpus():
        raise NVMLError(NVML_ERROR_DRIVER_NOT_LOADED)


def nvmlShutdown():
    pass


def nvmlSystemGetDriverVersion():
    return "999.99"


def nvmlDeviceGetCount():
    return len(_gpus())


def nvmlDeviceGetHandleByIndex(index):
    return _gpus()[index]


def nvmlDeviceGetName(gpu):
    return gpu.get("name", "Fake GPU")


def nvmlDeviceGetUtilizationRates(gpu):
    return types.SimpleNamespace(gpu=gpu.get("util", 50), memory=0)


def nvmlDeviceGetMemoryInfo(gpu):
    used, total = gpu.get("mem_used", 1 << 30), gpu.get("mem_total", 8 << 30)
    return types.SimpleNamespace(used=used, total=total, free=total - used)


def nvmlDeviceGetPowerUsage(gpu):
    return gpu.get("power_mw", 100_000)


def nvmlDeviceGetTotalEnergyConsumption(gpu):
    if "energy_mj" not in gpu:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return gpu["energy_mj"]


def nvmlDeviceGetTemperature(gpu, sensor):
    return gpu.get("temperature", 60)


NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2


def nvmlDeviceGetClockInfo(gpu, kind):
    return gpu.get("sm_clock", 1980) if kind == NVML_CLOCK_SM else gpu.get("mem_clock", 2619)


def nvmlDeviceGetFanSpeed(gpu):
    if "fan" not in gpu:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)  # passively cooled data-centre cards
    return gpu["fan"]


def nvmlDeviceGetCurrentClocksEventReasons(gpu):
    return gpu.get("throttle", 0)


def nvmlDeviceGetProcessUtilization(gpu, since):
    if gpu.get("process_utilization", True) is False:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    samples = [types.SimpleNamespace(pid=p["pid"], smUtil=p.get("sm", 0), memUtil=0, timeStamp=since + 1)
               for p in gpu.get("processes", [])]
    if not samples:
        raise NVMLError(NVML_ERROR_NOT_FOUND)
    return samples


def nvmlDeviceGetComputeRunningProcesses(gpu):
    return [types.SimpleNamespace(pid=p["pid"], usedGpuMemory=p.get("memory", 0)) for p in gpu.get("processes", [])]


def nvmlDeviceGetGraphicsRunningProcesses(gpu):
    return []
