"""The arithmetic of per-process attribution: shares clipped to [0, 1], and what a comparison has been given.

Sums are in joules before PUE; the carbon sum is joules x g/kWh (divide by ``JOULES_PER_KWH`` for grams).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH


@dataclass(frozen=True)
class Attributed:
    """What a comparison has been given so far."""

    cpu_j: float = 0.0
    gpu_j: float = 0.0
    mem_j: float = 0.0
    joule_g_per_kwh: float = 0.0  # sum of joules x the grid's g/kWh at their time
    gpu_method: str | None = None  # "utilization" or "memory", once a GPU share was taken

    @property
    def total_j(self) -> float:
        return self.cpu_j + self.gpu_j + self.mem_j

    def carbon_kg(self, pue: float) -> float:
        return self.joule_g_per_kwh * pue / JOULES_PER_KWH / GRAMS_PER_KG


def share(part: float, whole: float) -> float:
    """``part / whole`` clipped to [0, 1]; 0 when nothing was used."""
    if not (whole > 0.0) or not math.isfinite(part):
        return 0.0
    return min(max(part / whole, 0.0), 1.0)


def gpu_share(by_pid: dict[int, float], members: frozenset[int]) -> float:
    return share(sum(value for pid, value in by_pid.items() if pid in members), sum(by_pid.values()))
