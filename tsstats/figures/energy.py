"""Energy by component as typed sums: what stored and held samples add up to, everything retained, and the
PUE and carbon step that turns joules before PUE into kWh and grams after it.

Sums are in joules before PUE; the carbon sum is joules x g/kWh (divide by ``JOULES_PER_KWH`` for grams).

The arithmetic of per-process attribution: shares clipped to [0, 1], and what a comparison has been given
(``Attributed``, ``MachineJoules``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH
from tsstats.figures import formulas
from tsstats.figures.methods import METHOD_CPU_RAPL, METHOD_GPU_ENERGY, METHOD_GPU_POWER, METHOD_MEM_RAPL


@dataclass(frozen=True)
class EnergySums:
    """Energy in joules by component, as stored (before PUE), and the method bits seen."""

    cpu_j: float = 0.0
    cpu_active_j: float = 0.0
    gpu_j: float = 0.0
    gpu_idle_j: float = 0.0
    mem_j: float = 0.0
    rows: int = 0
    methods_all: int = 0xFF  # bits set in every row
    methods_any: int = 0  # bits set in some row
    joule_g: float = 0.0  # sum of each row's joules x the grid's g/kWh at its time
    joule_renewable: float = 0.0  # sum of each row's joules x the renewable share (%) at its time
    outside: int = 0  # rows outside the grid's rows over time (at the yearly average)

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.gpu_j + self.mem_j

    def g_per_kwh(self, default: float) -> float:
        """The intensity of this energy: per sample, weighted by its joules (``default`` with no energy)."""
        return self.joule_g / self.total_j if self.total_j > 0 else default

    def renewable_pct(self, default: float) -> float:
        return self.joule_renewable / self.total_j if self.total_j > 0 else default

    def methods(self) -> int:
        """CPU and memory count as metered only if every row was; GPU methods if any row used them."""
        if self.rows == 0:
            return 0
        metered = self.methods_all & (METHOD_CPU_RAPL | METHOD_MEM_RAPL)
        return metered | (self.methods_any & (METHOD_GPU_ENERGY | METHOD_GPU_POWER))

    def __add__(self, other: EnergySums) -> EnergySums:
        return EnergySums(self.cpu_j + other.cpu_j, self.cpu_active_j + other.cpu_active_j,
                          self.gpu_j + other.gpu_j, self.gpu_idle_j + other.gpu_idle_j, self.mem_j + other.mem_j,
                          self.rows + other.rows,
                          (self.methods_all & other.methods_all) if other.rows else self.methods_all,
                          self.methods_any | other.methods_any, self.joule_g + other.joule_g,
                          self.joule_renewable + other.joule_renewable, self.outside + other.outside)

    def __sub__(self, other: EnergySums) -> EnergySums:
        return EnergySums(self.cpu_j - other.cpu_j, self.cpu_active_j - other.cpu_active_j,
                          self.gpu_j - other.gpu_j, self.gpu_idle_j - other.gpu_idle_j, self.mem_j - other.mem_j,
                          self.rows - other.rows, self.methods_all, self.methods_any, self.joule_g - other.joule_g,
                          self.joule_renewable - other.joule_renewable, self.outside - other.outside)


@dataclass(frozen=True)
class Totals:
    """Joules by component and seconds covered over everything retained, before PUE."""

    cpu_j: float = 0.0
    gpu_j: float = 0.0
    mem_j: float = 0.0
    covered_s: float = 0.0

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.gpu_j + self.mem_j

    def plus(self, sums: EnergySums, covered_s: float) -> Totals:
        return Totals(self.cpu_j + sums.cpu_j, self.gpu_j + sums.gpu_j, self.mem_j + sums.mem_j,
                      self.covered_s + covered_s)

    def by_component(self) -> dict[str, float]:
        return {"cpu": self.cpu_j, "gpu": self.gpu_j, "memory": self.mem_j}


@dataclass(frozen=True)
class EnergyReport:
    """Energy after PUE and its emissions: what the API reports for an interval."""

    cpu_kwh: float
    gpu_kwh: float
    memory_kwh: float
    g_per_kwh: float

    @property
    def total_kwh(self) -> float:
        return self.cpu_kwh + self.gpu_kwh + self.memory_kwh

    @property
    def carbon_kg(self) -> float:
        return formulas.carbon_kg(self.total_kwh, self.g_per_kwh)

    @property
    def carbon_g(self) -> float:
        return formulas.carbon_g(self.total_kwh, self.g_per_kwh)


def report(sums: EnergySums | Totals, pue: float, g_per_kwh: float) -> EnergyReport:
    """The PUE and carbon step: joules before PUE -> kWh after PUE, with the grid's intensity."""
    return EnergyReport(formulas.kwh(sums.cpu_j * pue), formulas.kwh(sums.gpu_j * pue), formulas.kwh(sums.mem_j * pue),
                        g_per_kwh)


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
    service_j: float = 0.0  # of these, what this service itself used (sampling.footprint); not added to total_j

    @property
    def gpu_total_j(self) -> float:
        return float(sum(self.gpu_j.values()))

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.mem_j + self.gpu_total_j

    def __add__(self, other: MachineJoules) -> MachineJoules:
        gpus = {index: self.gpu_j.get(index, 0.0) + other.gpu_j.get(index, 0.0)
                for index in set(self.gpu_j) | set(other.gpu_j)}
        return MachineJoules(self.cpu_j + other.cpu_j, self.mem_j + other.mem_j, gpus,
                             self.service_j + other.service_j)

    def __sub__(self, other: MachineJoules) -> MachineJoules:
        gpus = {index: self.gpu_j.get(index, 0.0) - other.gpu_j.get(index, 0.0)
                for index in set(self.gpu_j) | set(other.gpu_j)}
        return MachineJoules(self.cpu_j - other.cpu_j, self.mem_j - other.mem_j, gpus,
                             self.service_j - other.service_j)


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
