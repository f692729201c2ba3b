"""Whether a run was fair to compare: its conditions against the limits (docs/conditions.md).

A run is unfair for each of: contention (CPU time of processes outside its tree and outside this service, as a
share of the machine's CPU capacity over the run) above ``contention_limit_pct``; CPU denied (of the time the
run's threads wanted a CPU, the part they waited while others ran) above the same limit; steal (time a
hypervisor gave other guests) above the same limit; any second in which the CPU, or a GPU (NVML's power-cap,
thermal and hardware slowdown reasons), throttled; any swap-in. The service's own CPU share is reported apart
and judges nothing. A figure this machine or run could not give is listed as unavailable and judges nothing:
``fair`` says what was measured, never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tsstats.core.units import MIB
from tsstats.figures.energy import Attributed
from tsstats.figures.formulas import finite_or_none


@dataclass(frozen=True)
class CpuShares:
    """Who had the CPUs over a run, in % (NaN where unknown)."""

    contention_pct: float = math.nan  # others' CPU time / the machine's capacity
    wait_pct: float = math.nan  # the run's threads' waiting / (their CPU time + waiting)
    denied_pct: float = math.nan  # min(waiting, others' CPU time) / (CPU time + waiting): waits others caused
    service_pct: float = math.nan  # this service's CPU time / the machine's capacity


def cpu_shares(attributed: Attributed) -> CpuShares:
    """The shares of a followed window's reads. Others are the machine's busy time less steal, the run's trees
    and this service. A run waits for a CPU also when it has more runnable threads than CPUs; it can only have
    been denied what others used, so the waiting that counts against fairness is bounded by their CPU time."""
    capacity = attributed.capacity_cpu
    if not capacity > 0:
        return CpuShares()
    service = attributed.service_cpu if math.isfinite(attributed.service_cpu) else 0.0
    others = max(attributed.busy_cpu - attributed.steal_cpu - attributed.tree_cpu - service, 0.0)
    wanted = attributed.tree_cpu + attributed.tree_wait
    wait = denied = math.nan
    if math.isfinite(attributed.tree_wait) and wanted > 0:
        wait = 100.0 * attributed.tree_wait / wanted
        denied = 100.0 * min(attributed.tree_wait, others) / wanted
    return CpuShares(contention_pct=100.0 * min(others / capacity, 1.0), wait_pct=wait, denied_pct=denied,
                     service_pct=100.0 * min(attributed.service_cpu / capacity, 1.0))  # NaN stays NaN


@dataclass(frozen=True)
class RunConditions:
    """A run's conditions; NaN where unavailable."""

    peak_cpu_temperature_c: float
    peak_gpu_temperature_c: float
    cpu_throttled_s: float
    cpu_frequency_pct: float  # mean clock as a share of the maximum
    swap_in_bytes: float
    steal_pct: float
    cpu: CpuShares  # unknown without pids
    gpu_throttled_s: float = math.nan  # the most of any GPU; NaN without GPU throttle reasons
    gpu_throttle_reasons: tuple[str, ...] = ()  # every reason seen while a GPU was throttled
    peak_gpu_memory_mib: float = math.nan  # of the run's processes (with pids and a GPU)
    gpu_contention_pct: dict[int, float] = field(default_factory=dict)  # by GPU: SM use outside its tree

    def as_dict(self, limit_pct: float) -> dict[str, object]:
        values = {"peakCpuTemperatureC": self.peak_cpu_temperature_c,
                  "peakGpuTemperatureC": self.peak_gpu_temperature_c, "cpuThrottledS": self.cpu_throttled_s,
                  "cpuFrequencyPct": self.cpu_frequency_pct, "swapInBytes": self.swap_in_bytes,
                  "stealPct": self.steal_pct, "contentionPct": self.cpu.contention_pct,
                  "cpuWaitPct": self.cpu.wait_pct, "cpuDeniedPct": self.cpu.denied_pct,
                  "serviceCpuPct": self.cpu.service_pct,
                  "gpuThrottledS": self.gpu_throttled_s, "peakGpuMemoryMiB": self.peak_gpu_memory_mib,
                  "gpuContentionPct": max(self.gpu_contention_pct.values(), default=math.nan)}
        shown: dict[str, object] = {name: finite_or_none(value, 2)
                                    for name, value in values.items()}
        shown["gpuThrottleReasons"] = list(self.gpu_throttle_reasons)
        shown["gpuContentionByGpu"] = {str(index): round(value, 2) for index, value in self.gpu_contention_pct.items()}
        shown["unavailable"] = [name for name, value in values.items() if not math.isfinite(value)]
        shown["limits"] = {"contentionPct": limit_pct}
        return shown


def unfair_reasons(conditions: RunConditions, limit_pct: float) -> list[str]:
    reasons = []
    if conditions.cpu.contention_pct > limit_pct:
        reasons.append(f"contention {conditions.cpu.contention_pct:.0f} % > {limit_pct:g} %")
    if conditions.cpu.denied_pct > limit_pct:
        reasons.append(f"cpu denied {conditions.cpu.denied_pct:.0f} % > {limit_pct:g} %")
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
    return {index: 100.0 * min(max((total - tree_use.get(index, 0.0)) / total, 0.0), 1.0)
            for index, total in all_use.items() if total > 0}
