"""Power and energy per tick for CPU, GPU and memory: counters where the machine has them, else models."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from tsstats.figures.energy import MachineJoules
from tsstats.figures.methods import (
    METHOD_CPU_RAPL,
    METHOD_GPU_ENERGY,
    METHOD_GPU_POWER,
    METHOD_MEM_RAPL,
    Method,
    Methods,
    cpu_model_power_w,
    dimm_model_power_w,
)
from tsstats.sources.gpu import GpuReader, GpuReading
from tsstats.sources.power import RaplReader, TdpMatch

NAN = float("nan")


@dataclass
class PowerSample:
    cpu_w: float
    cpu_j: float
    gpu_w: float
    gpu_j: float
    gpu_idle_j: float
    mem_w: float
    mem_j: float
    methods: int
    gpu_each_j: dict[int, float] = field(default_factory=dict)  # by GPU index


def current_methods(meter: PowerMeter, gpu: GpuReader) -> Methods:
    """How each component is measured now, from the meter and the NVML reader."""
    gpu_method = Method.ABSENT
    if gpu.gpus:
        every = all(gpu.energy_supported(info.index) for info in gpu.gpus)
        gpu_method = Method.NVML_ENERGY if every else Method.NVML_POWER
    return Methods(cpu=meter.cpu_method, gpu=gpu_method, memory=meter.memory_method)


class GpuEnergy:
    """Per-GPU energy between ticks: NVML's energy counter where supported, else power x interval."""

    def __init__(self) -> None:
        self._last_counter: dict[int, float] = {}
        self.idle_floor_w: dict[int, float] = {}

    def measure(self, readings: list[GpuReading], interval_s: float) -> tuple[float, float, float, list[float], int]:
        """(total W, total J, J at the idle floor, J per GPU, method bits) over this interval."""
        total_w = total_j = idle_j = 0.0
        per_gpu: list[float] = []
        methods = 0
        any_power = False
        for reading in readings:
            energy = NAN
            counter = reading.energy_counter_j
            previous = self._last_counter.get(reading.index)
            if math.isfinite(counter):
                self._last_counter[reading.index] = counter
                if previous is not None and counter >= previous:
                    energy = counter - previous
                    methods |= METHOD_GPU_ENERGY
            if not math.isfinite(energy) and math.isfinite(reading.power_w) and interval_s > 0:
                energy = reading.power_w * interval_s
                if not math.isfinite(counter):
                    methods |= METHOD_GPU_POWER
            if math.isfinite(reading.power_w):
                any_power = True
                total_w += reading.power_w
                floor = self.idle_floor_w.get(reading.index, reading.power_w)
                self.idle_floor_w[reading.index] = min(floor, reading.power_w)
            per_gpu.append(energy)
            if math.isfinite(energy):
                total_j += energy
                idle_j += min(self.idle_floor_w.get(reading.index, 0.0) * interval_s, energy)
        if not readings:
            return NAN, NAN, NAN, per_gpu, 0
        return (total_w if any_power else NAN), total_j, idle_j, per_gpu, methods

    def peek(self, readings: list[GpuReading], elapsed_s: float) -> dict[int, float]:
        """Joules of each GPU since the last ``measure``, from readings taken now, leaving the counters' marks."""
        joules = {}
        for reading in readings:
            counter, previous = reading.energy_counter_j, self._last_counter.get(reading.index)
            if math.isfinite(counter) and previous is not None and counter >= previous:
                joules[reading.index] = counter - previous
            elif math.isfinite(reading.power_w) and elapsed_s > 0:
                joules[reading.index] = reading.power_w * elapsed_s
        return joules


def counter_or_model(available: bool, read: Callable[[], float], model_j: Callable[[], float]) -> tuple[float, bool]:
    """Joules from a counter where it can be read, else from its model; and whether the counter gave them."""
    if available:
        try:
            joules = read()
        except (OSError, ValueError):
            joules = NAN
        if math.isfinite(joules):
            return joules, True
    return model_j(), False


class PowerMeter:
    """Combines RAPL, the TDP and DIMM models and the GPUs' energy into one ``PowerSample`` a tick."""

    def __init__(self, rapl: RaplReader, tdp: TdpMatch, dimms: int | None, has_gpu: bool):
        self.rapl = rapl
        self.tdp = tdp
        self.memory_model_w, self.dimms = dimm_model_power_w(dimms)
        self.has_gpu = has_gpu
        self.gpu = GpuEnergy()

    @property
    def cpu_method(self) -> Method:
        return Method.RAPL if self.rapl.cpu_available else Method.TDP_MODEL

    @property
    def memory_method(self) -> Method:
        return Method.RAPL_DRAM if self.rapl.dram_available else Method.DIMM_MODEL

    def _cpu_model_w(self, cpu_pct: float) -> float:
        return cpu_model_power_w(self.tdp.tdp_w, cpu_pct / 100.0 if math.isfinite(cpu_pct) else 0.0)

    def _joules(self, cpu_pct: float, seconds: float, cpu: Callable[[], float],
                dram: Callable[[], float]) -> tuple[float, float, int]:
        """(CPU J, memory J, method bits): from the counters ``cpu()`` and ``dram()`` where they can be read,
        else from the models over ``seconds``."""
        cpu_j, cpu_metered = counter_or_model(self.rapl.cpu_available, cpu,
                                              lambda: self._cpu_model_w(cpu_pct) * seconds)
        mem_j, mem_metered = counter_or_model(self.rapl.dram_available, dram, lambda: self.memory_model_w * seconds)
        return cpu_j, mem_j, (METHOD_CPU_RAPL if cpu_metered else 0) | (METHOD_MEM_RAPL if mem_metered else 0)

    def measure(self, interval_s: float, cpu_pct: float, gpus: list[GpuReading]) -> PowerSample:
        cpu_j, mem_j, methods = self._joules(cpu_pct, interval_s, self.rapl.cpu_joules, self.rapl.dram_joules)
        gpu_w, gpu_j, gpu_idle_j, per_gpu, gpu_methods = self.gpu.measure(gpus, interval_s)
        methods |= gpu_methods
        if interval_s <= 0:
            return PowerSample(NAN, 0.0, gpu_w, 0.0, 0.0, NAN, 0.0, methods)
        each = {reading.index: joules for reading, joules in zip(gpus, per_gpu, strict=True) if math.isfinite(joules)}
        return PowerSample(cpu_j / interval_s, cpu_j, gpu_w, gpu_j, gpu_idle_j, mem_j / interval_s, mem_j, methods,
                           each)

    def peek(self, elapsed_s: float, cpu_pct: float, gpus: list[GpuReading]) -> MachineJoules:
        """The energy since the last ``measure``, read now from the counters (RAPL, NVML's energy counter) or,
        where there is none, the models integrated over ``elapsed_s`` at the last tick's utilization; the next
        ``measure`` still counts all of it."""
        elapsed_s = max(elapsed_s, 0.0)
        cpu_j, mem_j, _ = self._joules(cpu_pct, elapsed_s, self.rapl.peek_cpu_joules, self.rapl.peek_dram_joules)
        return MachineJoules(cpu_j, mem_j, self.gpu.peek(gpus, elapsed_s))
