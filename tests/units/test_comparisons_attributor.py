"""The attributor on canned process trees and a fake NVML: shares of CPU, memory and GPU energy, the memory
fallback, and nothing read when no comparison names processes."""

from __future__ import annotations

import pytest
from support.nvml import FakeGpu, fake_nvml

from tsstats.comparisons.attributor import Attributor
from tsstats.figures.attribution import gpu_share, share
from tsstats.sources.nvml import GpuReading, NvmlReader
from tsstats.sources.processes import MachineUsage, TreeUsage


def test_shares_are_clipped_ratios():
    assert share(1.0, 4.0) == 0.25
    assert share(5.0, 4.0) == 1.0 and share(-1.0, 4.0) == 0.0 and share(1.0, 0.0) == 0.0
    assert gpu_share({1: 60.0, 2: 20.0, 3: 20.0}, frozenset({1, 3})) == pytest.approx(0.8)
    assert gpu_share({}, frozenset({1})) == 0.0

class CannedTrees:
    """Trees whose CPU time and memory the test sets."""

    def __init__(self):
        self.cpu = {}
        self.rss = {}
        self.busy = 0.0
        self.used = 1000.0

    def exists(self, pid):
        return pid in self.cpu

    def tree(self, pids):
        return TreeUsage(sum(self.cpu[p] for p in pids), sum(self.rss[p] for p in pids), frozenset(pids))

    def machine(self):
        return MachineUsage(self.busy, self.used)

def gpu_attributor(gpu: FakeGpu) -> Attributor:
    """An attributor over one fake GPU and two idle processes, 101 and 202, at 100 g/kWh; 101 tracked as 1."""
    reader = NvmlReader(fake_nvml([gpu]))
    assert reader.start()
    trees = CannedTrees()
    trees.cpu, trees.rss = {101: 0.0, 202: 0.0}, {101: 0.0, 202: 0.0}
    attributor = Attributor(trees, reader, lambda ts: 100.0)
    attributor.track(1, (101,))
    return attributor

def test_gpu_energy_follows_per_process_utilization():
    attributor = gpu_attributor(FakeGpu(processes={101: (75, 1 << 30), 202: (25, 3 << 30)}))
    attributor.track(2, (202,))
    for _ in range(10):
        attributor.add_tick({"ts_ms": 0.0, "cpu_j": 0.0, "gpu_j": 30.0, "mem_j": 0.0},
                            [GpuReading(index=0, power_w=300.0)])
    attributor.attribute(1000.0)
    first, second = attributor.tracked[1].attributed, attributor.tracked[2].attributed
    assert first.gpu_j == pytest.approx(300.0 * 0.75) and second.gpu_j == pytest.approx(300.0 * 0.25)
    assert first.gpu_method == "utilization"
    assert first.joule_g_per_kwh == pytest.approx(225.0 * 100.0)

def test_without_per_process_samples_the_gpu_memory_share_is_used_and_flagged():
    attributor = gpu_attributor(FakeGpu(processes={101: (0, 1 << 30), 202: (0, 3 << 30)},
                                        unsupported=("process_utilization",)))
    attributor.add_tick({"ts_ms": 0.0, "cpu_j": 0.0, "gpu_j": 100.0, "mem_j": 0.0},
                        [GpuReading(index=0, power_w=100.0)])
    attributor.attribute(1000.0)
    given = attributor.tracked[1].attributed
    assert given.gpu_j == pytest.approx(25.0) and given.gpu_method == "memory"

def test_cpu_and_memory_shares_and_what_stays_unattributed():
    trees = CannedTrees()
    trees.cpu, trees.rss = {1: 0.0, 2: 0.0}, {1: 300.0, 2: 100.0}
    attributor = Attributor(trees, NvmlReader(fake_nvml(None, init_fails=True)), lambda ts: 50.0)
    attributor.track(7, (1,))
    attributor.track(8, (2,))
    attributor.attribute(0.0)  # the first read sets the baselines
    trees.cpu, trees.busy = {1: 90.0, 2: 5.0}, 100.0
    attributor.add_tick({"ts_ms": 1000.0, "cpu_j": 40.0, "gpu_j": 0.0, "mem_j": 10.0}, [])
    attributor.attribute(1000.0)
    burner, sleeper = attributor.tracked[7].attributed, attributor.tracked[8].attributed
    assert burner.cpu_j == pytest.approx(36.0) and sleeper.cpu_j == pytest.approx(2.0)  # 2 J of 40 unattributed
    assert burner.mem_j == pytest.approx(3.0) and sleeper.mem_j == pytest.approx(1.0)
    assert attributor.untrack(7) == burner and 7 not in attributor.tracked

def test_nothing_is_read_without_a_comparison_naming_processes():
    class Refusing(CannedTrees):
        def tree(self, pids):
            raise AssertionError("read a tree")

        def machine(self):
            raise AssertionError("read the machine")

    attributor = Attributor(Refusing(), NvmlReader(fake_nvml(None, init_fails=True)), lambda ts: 1.0)
    attributor.add_tick({"ts_ms": 0.0, "cpu_j": 5.0, "gpu_j": 0.0, "mem_j": 1.0}, [])
    attributor.attribute(1000.0)
    assert attributor.tracked == {}
