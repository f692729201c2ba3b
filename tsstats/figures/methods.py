"""How each component's energy is obtained: the method names the API reports, and the bit set each stored
sample keeps of them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

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
