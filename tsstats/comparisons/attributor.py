"""Energy of the work itself: the share of this machine's energy used by the processes a comparison names.

Each followed window (a comparison that names processes, or one of its phases) keeps its own baseline: the
machine's energy by component, the machine's busy CPU time and its trees' CPU time, read at the instant it
opened. Once a second, and at the instant it closes, the named trees are read again (and nothing else: with
no such window nothing is read; a tree several windows name is read once for all of them, and at most
``max_trees`` different trees are followed, a 409 beyond) and the window is given, over the time since its
last read:

- CPU energy x (CPU time of its trees / busy CPU time of the whole machine),
- each GPU's energy x its processes' share of that GPU's SM utilization (NVML per-process samples), or, where
  the driver gives none, their share of the GPU memory held (the comparison is then flagged ``memory``),
- memory energy x (resident memory of its trees / memory in use on the machine).

A window's edges are its own instants, not the nearest tick's nor the next second's, so a 0.3 s run is
measured as well as an hour's. The rest of the machine's energy stays unattributed. Carbon is summed read by
read with the grid's intensity at that time (``figures.attribution`` holds the arithmetic). Runs on the
writer thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace

from tsstats.core.inputs import InputError
from tsstats.figures.energy import Attributed, MachineJoules, gpu_share, share, tree_part
from tsstats.sources.gpu import GpuReader, ProcessGpuUse
from tsstats.sources.processes import MachineUsage, ProcessTrees, TreeUsage


@dataclass
class Tracked:
    """A followed window: its processes, what it has been given, and the readings of its last read."""

    pids: tuple[int, ...]
    attributed: Attributed = field(default_factory=Attributed)
    energy: MachineJoules = field(default_factory=MachineJoules)
    machine: MachineUsage = field(default_factory=lambda: MachineUsage(0.0, 0.0))
    tree_ticks: float = 0.0
    wait_ticks: float = 0.0
    alive: bool = True  # some named process was running at the last read


class Attributor:
    """Per-process attribution for the windows that named processes (writer thread)."""

    def __init__(self, trees: ProcessTrees, gpu: GpuReader, intensity_at: Callable[[float], float],
                 energy_now: Callable[[], MachineJoules], energy_at_tick: Callable[[], MachineJoules],
                 max_trees: int):
        """``intensity_at(ts_ms)``: g/kWh; ``energy_now()``: the machine's energy to this instant (reads the
        counters); ``energy_at_tick()``: the same at the last tick (free); ``max_trees``: the different process
        trees followed at most (``max_tracked_trees``)."""
        self.max_trees = max_trees
        self.trees = trees
        self.gpu = gpu
        self.intensity_at = intensity_at
        self.energy_now = energy_now
        self.energy_at_tick = energy_at_tick
        self.tracked: dict[Hashable, Tracked] = {}
        self._uses: dict[int, ProcessGpuUse] = {}  # the last per-process GPU use read, by GPU
        self._memory: dict[int, dict[int, float]] = {}  # the last GPU memory held by process, by GPU

    # which windows
    def track(self, key: Hashable, pids: tuple[int, ...], attributed: Attributed | None = None) -> None:
        """Follow a window from now (``attributed``: what it was given before a restart); a tree beyond the
        ``max_trees`` different ones followed is refused with a 409."""
        pids = tree_key(pids)
        current = self.tracked.get(key)
        if not self.can_track(pids, key):
            raise InputError(f"{self.max_trees} process trees are followed already, the most max_tracked_trees "
                             f"allows; finish a comparison that names processes first, or name the same pids",
                             field="pids", status=409)
        machine, tree = self.trees.machine(), self.trees.tree(pids)
        self.tracked[key] = Tracked(pids, attributed or (current.attributed if current else Attributed()),
                                    self.energy_now(), machine, tree.cpu_ticks, tree.wait_ticks)

    def can_track(self, pids: tuple[int, ...], key: Hashable | None = None) -> bool:
        """Whether ``pids`` is a tree followed already (by a window other than ``key``), or one more would be
        within ``max_trees``."""
        followed = {tracked.pids for other, tracked in self.tracked.items() if other != key}
        return tree_key(pids) in followed or len(followed) < self.max_trees

    def untrack(self, key: Hashable, now_ms: float) -> Attributed | None:
        """Stop following a window; what it was given, read up to this instant."""
        return self.untrack_many([key], now_ms)[key]

    def untrack_many(self, keys: Sequence[Hashable], now_ms: float) -> dict[Hashable, Attributed | None]:
        """Stop following windows that end at the same instant: the machine, its energy and each tree are read
        once for all of them (a run's thousand phases closing with it cost one read)."""
        followed = [key for key in keys if key in self.tracked]
        ended: dict[Hashable, Attributed | None] = dict.fromkeys(keys)
        if not followed:
            return ended
        machine, energy, intensity = self.trees.machine(), self.energy_now(), self.intensity_at(now_ms)
        trees = {pids: self.trees.tree(pids) for pids in {self.tracked[key].pids for key in followed}}
        for key in followed:
            tracked = self.tracked.pop(key)
            self._give(tracked, trees[tracked.pids], machine, energy, intensity, self._uses, fresh=False)
            ended[key] = tracked.attributed
        return ended

    def exists(self, pid: int) -> bool:
        return self.trees.exists(pid)

    # once a second
    def attribute(self, now_ms: float) -> list[Hashable]:
        """Read the named trees and give each window its share of the energy since its last read; returns the
        windows none of whose processes is running any more."""
        if not self.tracked:
            return []
        machine, energy = self.trees.machine(), self.energy_at_tick()
        if self.gpu.gpus:
            self._uses = {info.index: use for info in self.gpu.gpus
                          if (use := self.gpu.process_use(info.index)) is not None}
            self._memory = {info.index: use.by_pid if (use := self._uses.get(info.index)) is not None
                            and use.method == "memory" else self.gpu.process_memory(info.index)
                            for info in self.gpu.gpus}
        intensity = self.intensity_at(now_ms)
        trees = {pids: self.trees.tree(pids) for pids in {tracked.pids for tracked in self.tracked.values()}}
        ended = []
        for key, tracked in self.tracked.items():
            self._give(tracked, trees[tracked.pids], machine, energy, intensity, self._uses)
            if not tracked.alive:
                ended.append(key)
        return ended

    def _give(self, tracked: Tracked, tree: TreeUsage, machine: MachineUsage, energy: MachineJoules,
              intensity: float, uses: dict[int, ProcessGpuUse], fresh: bool = True) -> None:
        """``fresh``: ``uses`` were read for this call (the once-a-second read), not kept from the last one (a
        window's own end), so their samples count towards its GPU contention."""
        spent, last = energy - tracked.energy, tracked.machine
        cpu_j = max(spent.cpu_j, 0.0) * share(tree.cpu_ticks - tracked.tree_ticks, machine.busy_ticks
                                              - last.busy_ticks)
        mem_j = max(spent.mem_j, 0.0) * share(tree.rss_bytes, machine.used_bytes)
        gpu_j, method = 0.0, tracked.attributed.gpu_method
        before = tracked.attributed
        tree_use, all_use = dict(before.gpu_tree_use), dict(before.gpu_all_use)
        for index, use in uses.items():
            gpu_j += max(spent.gpu_j.get(index, 0.0), 0.0) * gpu_share(use.by_pid, tree.members)
            if use.method == "memory" or method is None:
                method = use.method
            if use.method == "utilization" and fresh:
                tree_use[index] = tree_use.get(index, 0.0) + tree_part(use.by_pid, tree.members)
                all_use[index] = all_use.get(index, 0.0) + sum(use.by_pid.values())
        peak = before.peak_gpu_memory_bytes
        if self._memory:  # what its processes hold now on all GPUs together
            now = sum(tree_part(memory, tree.members) for memory in self._memory.values())
            peak = max(peak, now) if math.isfinite(peak) else now
        tracked.attributed = replace(
            before, cpu_j=before.cpu_j + cpu_j, gpu_j=before.gpu_j + gpu_j, mem_j=before.mem_j + mem_j,
            joule_g_per_kwh=before.joule_g_per_kwh + (cpu_j + gpu_j + mem_j) * intensity,
            gpu_method=method if uses else before.gpu_method,
            tree_cpu=before.tree_cpu + max(tree.cpu_ticks - tracked.tree_ticks, 0.0),
            busy_cpu=before.busy_cpu + max(machine.busy_ticks - last.busy_ticks, 0.0),
            capacity_cpu=before.capacity_cpu + max(machine.total_ticks - last.total_ticks, 0.0),
            steal_cpu=before.steal_cpu + max(machine.steal_ticks - last.steal_ticks, 0.0),
            service_cpu=before.service_cpu + max(machine.service_ticks - last.service_ticks, 0.0),
            tree_wait=before.tree_wait + max(tree.wait_ticks - tracked.wait_ticks, 0.0),  # a thread's exit: 0
            gpu_tree_use=tree_use, gpu_all_use=all_use, peak_gpu_memory_bytes=peak)
        tracked.energy, tracked.machine, tracked.tree_ticks = energy, machine, tree.cpu_ticks
        tracked.wait_ticks = tree.wait_ticks
        tracked.alive = tree.running


def tree_key(pids: tuple[int, ...]) -> tuple[int, ...]:
    """The same processes named in any order or twice are one tree."""
    return tuple(sorted(set(pids)))
