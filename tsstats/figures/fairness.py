"""Whether a run was a fair one to compare: its conditions against the limits (docs/conditions.md).

A run is unfair for each of: contention (CPU time of processes outside its tree, as a share of the machine's
busy CPU time) above ``contention_limit_pct``; steal (time a hypervisor gave other guests) above the same
limit; any second in which the CPU, or a GPU (NVML's power-cap, thermal and hardware slowdown reasons), throttled;
any swap-in. A figure this machine or run could not give is
listed as unavailable and judges nothing: ``fair`` says what was measured, never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

MIB = 1024 * 1024


@dataclass(frozen=True)
class RunConditions:
    """A run's conditions; NaN where unavailable."""

    peak_cpu_temperature_c: float
    peak_gpu_temperature_c: float
    cpu_throttled_s: float
    cpu_frequency_pct: float  # mean clock as a share of the maximum
    swap_in_bytes: float
    steal_pct: float
    contention_pct: float  # NaN without pids
    gpu_throttled_s: float = math.nan  # the most of any GPU; NaN without GPU throttle reasons
    gpu_throttle_reasons: tuple[str, ...] = ()  # every reason seen while a GPU was throttled
    peak_gpu_memory_mib: float = math.nan  # of the run's processes (with pids and a GPU)
    gpu_contention_pct: dict[int, float] = field(default_factory=dict)  # by GPU: SM use outside its tree

    def as_dict(self, limit_pct: float) -> dict[str, object]:
        values = {"peakCpuTemperatureC": self.peak_cpu_temperature_c,
                  "peakGpuTemperatureC": self.peak_gpu_temperature_c, "cpuThrottledS": self.cpu_throttled_s,
                  "cpuFrequencyPct": self.cpu_frequency_pct, "swapInBytes": self.swap_in_bytes,
                  "stealPct": self.steal_pct, "contentionPct": self.contention_pct,
                  "gpuThrottledS": self.gpu_throttled_s, "peakGpuMemoryMiB": self.peak_gpu_memory_mib,
                  "gpuContentionPct": max(self.gpu_contention_pct.values(), default=math.nan)}
        shown: dict[str, object] = {name: (round(value, 2) if math.isfinite(value) else None)
                                    for name, value in values.items()}
        shown["gpuThrottleReasons"] = list(self.gpu_throttle_reasons)
        shown["gpuContentionByGpu"] = {str(index): round(value, 2) for index, value in self.gpu_contention_pct.items()}
        shown["unavailable"] = [name for name, value in values.items() if not math.isfinite(value)]
        shown["limits"] = {"contentionPct": limit_pct}
        return shown


def unfair_reasons(conditions: RunConditions, limit_pct: float) -> list[str]:
    reasons = []
    if conditions.contention_pct > limit_pct:
        reasons.append(f"contention {conditions.contention_pct:.0f} % > {limit_pct:g} %")
    if conditions.steal_pct > limit_pct:
        reasons.append(f"steal {conditions.steal_pct:.0f} % > {limit_pct:g} %")
    for index, value in sorted(conditions.gpu_contention_pct.items()):
        if value > limit_pct:
            reasons.append(f"gpu {index} contention {value:.0f} % > {limit_pct:g} %")
    if conditions.cpu_throttled_s > 0:
        reasons.append(f"cpu throttled {max(conditions.cpu_throttled_s, 1):.0f} s")
    if conditions.gpu_throttled_s > 0:
        reasons.append(f"gpu throttled {max(conditions.gpu_throttled_s, 1):.0f} s "
                       f"({', '.join(conditions.gpu_throttle_reasons) or 'reason unknown'})")
    if conditions.swap_in_bytes > 0:
        reasons.append(f"swapped in {conditions.swap_in_bytes / MIB:.1f} MiB")
    return reasons


def gpu_contention(tree_use: dict[int, float], all_use: dict[int, float]) -> dict[int, float]:
    """By GPU, the share of its processes' SM samples that came from outside the run's tree, in %."""
    return {index: contention_pct(tree_use.get(index, 0.0), total) for index, total in all_use.items() if total > 0}


def contention_pct(tree_cpu: float, busy_cpu: float) -> float:
    """Share of the machine's busy CPU time that was not the run's own, in %; NaN when nothing was busy."""
    if not busy_cpu > 0:
        return math.nan
    return 100.0 * min(max((busy_cpu - tree_cpu) / busy_cpu, 0.0), 1.0)
