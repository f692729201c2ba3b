"""A stand-in for AMD SMI's Python package, for servers and commands that tests start as processes.

Tests put this folder first on PYTHONPATH, so such a process sees the AMD GPUs described by the environment
variable ``FAKE_AMDSMI_GPUS`` (a JSON list of objects with ``name``, ``gfx`` (%), ``vram_used_mib``,
``power_w``, ``energy_uj`` and ``temperature``; a value "N/A" where the GPU gives none), whatever the host has.
Unset or empty: no driver. The in-process tests use ``support.amdsmi``, built on the same functions.
"""

import json
import os
import types

AMDSMI_STATUS_NOT_SUPPORTED = 2
AMDSMI_STATUS_DRIVER_NOT_LOADED = 34
AmdSmiInitFlags = types.SimpleNamespace(INIT_AMD_GPUS=2)
AmdSmiTemperatureType = types.SimpleNamespace(EDGE=0, HOTSPOT=1)
AmdSmiTemperatureMetric = types.SimpleNamespace(CURRENT=0)


class AmdSmiLibraryException(Exception):
    def __init__(self, code):
        super().__init__(f"AMD SMI error {code}")
        self.code = code

    def get_error_code(self):
        return self.code


def _gpus() -> list[dict]:
    return json.loads(os.environ.get("FAKE_AMDSMI_GPUS") or "[]")


def _gpu(handle) -> dict:
    return _gpus()[handle]


def _value(handle, key, default):
    value = _gpu(handle).get(key, default)
    if value == "unsupported":
        raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
    return value


def amdsmi_init(flags=None):
    if not _gpus():
        raise AmdSmiLibraryException(AMDSMI_STATUS_DRIVER_NOT_LOADED)


def amdsmi_shut_down():
    pass


def amdsmi_get_processor_handles():
    return list(range(len(_gpus())))


def amdsmi_get_gpu_driver_info(handle):
    return {"driver_name": "amdgpu", "driver_version": "6.10.5"}


def amdsmi_get_gpu_asic_info(handle):
    return {"market_name": _gpu(handle).get("name", "Fake MI300X")}


def amdsmi_get_gpu_activity(handle):
    return {"gfx_activity": _value(handle, "gfx", 0), "umc_activity": 0, "mm_activity": "N/A"}


def amdsmi_get_gpu_vram_usage(handle):
    return {"vram_total": 196_592, "vram_used": _value(handle, "vram_used_mib", 1024)}


def amdsmi_get_power_info(handle):
    return {"current_socket_power": _value(handle, "power_w", 100), "average_socket_power": "N/A"}


def amdsmi_get_energy_count(handle):
    return {"energy_accumulator": _value(handle, "energy_uj", 0), "counter_resolution": 1.0, "timestamp": 0}


def amdsmi_get_temp_metric(handle, sensor, metric):
    if sensor == AmdSmiTemperatureType.EDGE and _gpu(handle).get("edge") is False:
        raise AmdSmiLibraryException(AMDSMI_STATUS_NOT_SUPPORTED)
    return _value(handle, "temperature", 50)


def amdsmi_get_gpu_process_list(handle):
    return [{"name": "python", "pid": int(pid), "mem": memory, "engine_usage": {"gfx": 0}}
            for pid, memory in _gpu(handle).get("processes", {}).items()]


AmdSmiClkType = types.SimpleNamespace(GFX=0, MEM=1)


def amdsmi_get_clock_info(handle, kind):
    return {"clk": _value(handle, "gfx_clock" if kind == AmdSmiClkType.GFX else "mem_clock", 1000),
            "min_clk": 500, "max_clk": 2100}
