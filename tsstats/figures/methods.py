"""How each component's energy is obtained: the method names the API reports, and the bit set each stored
sample keeps of them. The power models used where no energy
counter can be read: the CPU's TDP curve and memory per DIMM. Pure.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import overload

import numpy as np

METHOD_CPU_RAPL = 1
METHOD_GPU_ENERGY = 2
METHOD_GPU_POWER = 4
METHOD_MEM_RAPL = 8


class Method(StrEnum):
    """How a component's energy is obtained; the values are the API's method names."""

    RAPL = "rapl"
    TDP_MODEL = "tdp_model"
    RAPL_DRAM = "rapl_dram"
    DIMM_MODEL = "dimm_model"
    NVML_ENERGY = "nvml_energy"
    NVML_POWER = "nvml_power"
    ABSENT = "absent"


ESTIMATED_METHODS = (Method.TDP_MODEL, Method.DIMM_MODEL)  # a model's estimate rather than a meter's reading


@dataclass(frozen=True)
class Methods:
    """The method of each component."""

    cpu: Method
    gpu: Method
    memory: Method

    @property
    def metered(self) -> bool:
        """CPU and memory from counters (GPUs, when present, always are: NVML energy or power)."""
        return self.cpu is Method.RAPL and self.memory is Method.RAPL_DRAM

    def as_dict(self) -> dict[str, str]:
        return {"cpu": self.cpu.value, "gpu": self.gpu.value, "memory": self.memory.value}


def methods_of(bits: int, has_gpu: bool) -> Methods:
    """The methods recorded in a sample's ``methods`` bit set."""
    if bits & METHOD_GPU_POWER:
        gpu = Method.NVML_POWER
    elif bits & METHOD_GPU_ENERGY:
        gpu = Method.NVML_ENERGY
    else:
        gpu = Method.NVML_POWER if has_gpu else Method.ABSENT
    return Methods(cpu=Method.RAPL if bits & METHOD_CPU_RAPL else Method.TDP_MODEL, gpu=gpu,
                   memory=Method.RAPL_DRAM if bits & METHOD_MEM_RAPL else Method.DIMM_MODEL)


WATTS_PER_DIMM = 5.0
MIN_DIMMS = 2


@overload
def cpu_model_power_w(tdp_w: float, utilization: float) -> float: ...


@overload
def cpu_model_power_w(tdp_w: float, utilization: np.ndarray) -> np.ndarray: ...


def cpu_model_power_w(tdp_w: float, utilization: float | np.ndarray) -> float | np.ndarray:
    """Modelled CPU power: TDP x (0.1 + 0.9 u^3), u the utilization in 0..1 (a number, or an array of them)."""
    if isinstance(utilization, np.ndarray):
        u = np.clip(utilization, 0.0, 1.0)
    else:
        u = min(max(utilization, 0.0), 1.0)
    return tdp_w * (0.1 + 0.9 * u ** 3)


def dimm_model_power_w(dimms: int | None) -> tuple[float, int]:
    """Modelled memory power (5 W per DIMM, at least 2 DIMMs) and the DIMM count used."""
    used = max(dimms or MIN_DIMMS, MIN_DIMMS)
    return WATTS_PER_DIMM * used, used
