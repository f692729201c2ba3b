"""This machine's energy since the service started, by component: summed tick by tick, and readable at any
instant between ticks from the counters themselves (sampler thread, which is also the writer thread where
comparisons open and close their windows).

A window that opens and closes between two ticks still gets the counters' own difference: ``now()`` adds to
the sum at the last tick what RAPL and NVML's energy counter have moved since (or, where there is no
counter, the power model over the time since), without moving the marks the next tick measures from.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tsstats.figures.attribution import MachineJoules
from tsstats.sampling.meter import PowerMeter, PowerSample
from tsstats.sources.gpu import GpuReader


class MachineEnergy:
    def __init__(self, meter: PowerMeter, gpu: GpuReader, monotonic: Callable[[], float]):
        self.meter = meter
        self.gpu = gpu
        self.monotonic = monotonic
        self._sum = MachineJoules()
        self._last_mono: float | None = None
        self._last_cpu_pct = math.nan

    def ticked(self, mono_s: float, cpu_pct: float, power: PowerSample) -> None:
        """A tick's energy (writer thread)."""
        self._sum = self._sum + MachineJoules(_finite(power.cpu_j), _finite(power.mem_j),
                                              {index: _finite(j) for index, j in power.gpu_each_j.items()})
        self._last_mono, self._last_cpu_pct = mono_s, cpu_pct

    def at_last_tick(self) -> MachineJoules:
        return self._sum

    def now(self) -> MachineJoules:
        """The energy up to this instant (reads the counters, and the GPUs when there are some)."""
        if self._last_mono is None:
            return self._sum
        readings = self.gpu.read() if self.gpu.gpus else []
        return self._sum + self.meter.peek(self.monotonic() - self._last_mono, self._last_cpu_pct, readings)


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0
