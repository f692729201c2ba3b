"""The arithmetic of per-process attribution: shares clipped to [0, 1], and what a comparison has been given.

Sums are in joules before PUE; the carbon sum is joules x g/kWh (divide by ``JOULES_PER_KWH`` for grams).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH


@dataclass(frozen=True)
class Attributed:
    """What a comparison has been given so far."""

    cpu_j: float = 0.0
    gpu_j: float = 0.0
    mem_j: float = 0.0
    joule_g_per_kwh: float = 0.0  # sum of joules x the grid's g/kWh at their time
    gpu_method: str | None = None  # "utilization" or "memory", once a GPU share was taken
    tree_cpu: float = 0.0  # CPU time of its trees while followed (ticks), kept in memory only
    busy_cpu: float = 0.0  # busy CPU time of the whole machine over the same reads
    capacity_cpu: float = 0.0  # CPU time of all CPUs, idle included, over the same reads
    steal_cpu: float = 0.0  # of busy_cpu, the time a hypervisor gave other guests
    service_cpu: float = 0.0  # of busy_cpu, this service's own (NaN: unknown)
    tree_wait: float = 0.0  # its trees' time runnable but waiting for a CPU (ticks; NaN: unknown)
    gpu_tree_use: Mapping[int, float] = field(default_factory=dict)  # its processes' summed SM samples, by GPU
    gpu_all_use: Mapping[int, float] = field(default_factory=dict)  # every process's, by GPU
    peak_gpu_memory_bytes: float = math.nan  # the most GPU memory its processes held at once (NaN: no GPU)

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.gpu_j + self.mem_j

    def carbon_kg(self, pue: float) -> float:
        return self.joule_g_per_kwh * pue / JOULES_PER_KWH / GRAMS_PER_KG


@dataclass(frozen=True)
class MachineJoules:
    """This machine's energy by component (joules before PUE): since the service started, or a difference of
    two such readings; GPUs by index."""

    cpu_j: float = 0.0
    mem_j: float = 0.0
    gpu_j: Mapping[int, float] = field(default_factory=dict)

    @property
    def gpu_total_j(self) -> float:
        return float(sum(self.gpu_j.values()))

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.mem_j + self.gpu_total_j

    def __add__(self, other: MachineJoules) -> MachineJoules:
        gpus = {index: self.gpu_j.get(index, 0.0) + other.gpu_j.get(index, 0.0)
                for index in set(self.gpu_j) | set(other.gpu_j)}
        return MachineJoules(self.cpu_j + other.cpu_j, self.mem_j + other.mem_j, gpus)

    def __sub__(self, other: MachineJoules) -> MachineJoules:
        gpus = {index: self.gpu_j.get(index, 0.0) - other.gpu_j.get(index, 0.0)
                for index in set(self.gpu_j) | set(other.gpu_j)}
        return MachineJoules(self.cpu_j - other.cpu_j, self.mem_j - other.mem_j, gpus)


def share(part: float, whole: float) -> float:
    """``part / whole`` clipped to [0, 1]; 0 when nothing was used."""
    if not (whole > 0.0) or not math.isfinite(part):
        return 0.0
    return min(max(part / whole, 0.0), 1.0)


def tree_part(by_pid: Mapping[int, float], members: frozenset[int]) -> float:
    """What the tree's processes used of a per-process measure."""
    return sum(value for pid, value in by_pid.items() if pid in members)


def gpu_share(by_pid: dict[int, float], members: frozenset[int]) -> float:
    return share(tree_part(by_pid, members), sum(by_pid.values()))
