"""Energy by component as typed sums: what stored and held samples add up to, everything retained, and the
PUE and carbon step that turns joules before PUE into kWh and grams after it."""

from __future__ import annotations

from dataclasses import dataclass

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
