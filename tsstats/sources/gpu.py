"""What a GPU reader gives, and the one interface its implementations meet: ``nvml.NvmlReader`` (NVIDIA,
through ``pynvml``), ``amdsmi_reader.AmdSmiReader`` (AMD, through ``amdsmi``), and ``gpus.AllGpus``, which
reads every kind a machine has as one list."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

NAN = float("nan")


@dataclass
class GpuReading:
    index: int
    ok: bool = True
    utilization_pct: float = NAN
    memory_used_bytes: float = NAN
    memory_total_bytes: float = NAN
    power_w: float = NAN
    energy_counter_j: float = NAN  # the driver's cumulative counter, in joules
    temperature_c: float = NAN


@dataclass(frozen=True)
class ProcessGpuUse:
    """What each process used of one GPU: SM utilization summed over the driver's samples ("utilization"), or
    bytes of GPU memory held ("memory")."""

    by_pid: dict[int, float]
    method: str


@dataclass
class GpuInfo:
    index: int
    name: str
    unsupported: set[str] = field(default_factory=set)
    library: str = "nvml"  # the reader's: nvml or amdsmi


class GpuReader(Protocol):
    """Per-GPU readings every tick, per-process use once a second; a field a GPU does not give is NaN and
    named in its ``unsupported``."""

    name: str
    first_index: int  # the index of its first GPU (set before ``start``)
    gpus: list[GpuInfo]
    driver_version: str
    error: str  # why there is no GPU, when there is none

    def start(self) -> bool: ...

    def stop(self) -> None: ...

    def read(self) -> list[GpuReading]: ...

    def process_use(self, index: int) -> ProcessGpuUse | None: ...

    def energy_supported(self, index: int) -> bool: ...
