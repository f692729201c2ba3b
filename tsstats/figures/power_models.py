"""The power models used where no energy counter can be read: the CPU's TDP curve and memory per DIMM."""

from __future__ import annotations

from typing import overload

import numpy as np

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
