"""Energy of the work itself: the share of this machine's energy used by the processes a comparison names.

While a comparison with ``pids`` runs, the sampler hands every tick's energy to the ``Attributor``; once a
second it reads the named process trees (and nothing else: with no such comparison nothing is read) and
gives each comparison, over that second:

- CPU energy x (CPU time of its trees / busy CPU time of the whole machine),
- each GPU's energy x its processes' share of that GPU's SM utilization (NVML per-process samples), or, where
  the driver gives none, their share of the GPU memory held (the comparison is then flagged ``memory``),
- memory energy x (resident memory of its trees / memory in use on the machine).

The rest of the machine's energy stays unattributed. Carbon is summed second by second with the grid's
intensity at that time (``figures.attribution`` holds the arithmetic).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from tsstats.figures.attribution import Attributed, gpu_share, share
from tsstats.sources.nvml import GpuReading, NvmlReader
from tsstats.sources.processes import ProcessTrees


@dataclass
class Tracked:
    pids: tuple[int, ...]
    attributed: Attributed = field(default_factory=Attributed)
    last_cpu_ticks: float | None = None  # the tree's CPU time at the last read


@dataclass
class Bucket:
    """Energy of the ticks since the last attribution."""

    cpu_j: float = 0.0
    mem_j: float = 0.0
    gpu_j: dict[int, float] = field(default_factory=dict)
    other_gpu_j: float = 0.0  # GPU energy of a tick that has no per-GPU power (shared by GPU count)


class Attributor:
    """Per-process attribution for the running comparisons that named processes (writer thread)."""

    def __init__(self, trees: ProcessTrees, gpu: NvmlReader, intensity_at: Callable[[float], float]):
        """``trees``: a ``sources.processes`` reader; ``gpu``: the NvmlReader; ``intensity_at(ts_ms)``: g/kWh."""
        self.trees = trees
        self.gpu = gpu
        self.intensity_at = intensity_at
        self.tracked: dict[int, Tracked] = {}
        self.bucket = Bucket()
        self._last_busy: float | None = None
        self.last_tick_ms = 0.0

    # which comparisons
    def track(self, comparison_id: int, pids: tuple[int, ...], attributed: Attributed | None = None) -> None:
        current = self.tracked.get(comparison_id)
        self.tracked[comparison_id] = Tracked(tuple(pids), attributed or (current.attributed if current else
                                                                           Attributed()))

    def untrack(self, comparison_id: int) -> Attributed | None:
        """Stop following a comparison; what it was given (the ticks since the last second included)."""
        if comparison_id in self.tracked:
            self.attribute(self.last_tick_ms)
        found = self.tracked.pop(comparison_id, None)
        if not self.tracked:
            self._last_busy = None
        return found.attributed if found else None

    def exists(self, pid: int) -> bool:
        return self.trees.exists(pid)

    # every tick
    def add_tick(self, host: dict[str, float], gpus: list[GpuReading]) -> None:
        if not self.tracked:
            return
        bucket = self.bucket
        bucket.cpu_j += _finite(host.get("cpu_j"))
        bucket.mem_j += _finite(host.get("mem_j"))
        gpu_total = _finite(host.get("gpu_j"))
        powers = {g.index: g.power_w for g in gpus if g.ok and math.isfinite(g.power_w)}
        watts = sum(powers.values())
        if watts > 0:
            for index, power in powers.items():
                bucket.gpu_j[index] = bucket.gpu_j.get(index, 0.0) + gpu_total * power / watts
        else:
            bucket.other_gpu_j += gpu_total
        self.last_tick_ms = host.get("ts_ms", self.last_tick_ms)

    # once a second
    def attribute(self, now_ms: float) -> None:
        """Read the named trees and share the bucket's energy among their comparisons."""
        bucket, self.bucket = self.bucket, Bucket()
        if not self.tracked:
            return
        machine = self.trees.machine()
        busy_delta = None if self._last_busy is None else machine.busy_ticks - self._last_busy
        self._last_busy = machine.busy_ticks
        uses = {}
        if bucket.gpu_j or bucket.other_gpu_j:
            for info in self.gpu.gpus:
                use = self.gpu.process_use(info.index)
                if use is not None:
                    uses[info.index] = use
        intensity = self.intensity_at(now_ms)
        gpu_count = max(len(self.gpu.gpus), 1)
        for tracked in self.tracked.values():
            tree = self.trees.tree(tracked.pids)
            previous, tracked.last_cpu_ticks = tracked.last_cpu_ticks, tree.cpu_ticks
            cpu_j = 0.0
            if previous is not None and busy_delta is not None:
                cpu_j = bucket.cpu_j * share(tree.cpu_ticks - previous, busy_delta)
            mem_j = bucket.mem_j * share(tree.rss_bytes, machine.used_bytes)
            gpu_j, method = 0.0, tracked.attributed.gpu_method
            for index, use in uses.items():
                energy = bucket.gpu_j.get(index, 0.0) + bucket.other_gpu_j / gpu_count
                gpu_j += energy * gpu_share(use.by_pid, tree.members)
                if use.method == "memory" or method is None:
                    method = use.method
            before = tracked.attributed
            tracked.attributed = replace(
                before, cpu_j=before.cpu_j + cpu_j, gpu_j=before.gpu_j + gpu_j, mem_j=before.mem_j + mem_j,
                joule_g_per_kwh=before.joule_g_per_kwh + (cpu_j + gpu_j + mem_j) * intensity,
                gpu_method=method if uses else before.gpu_method)


def _finite(value: float | None) -> float:
    return float(value) if value is not None and math.isfinite(value) else 0.0
