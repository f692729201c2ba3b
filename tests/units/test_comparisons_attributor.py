"""The attributor on canned process trees, canned machine energy and a fake NVML: shares of CPU, memory and GPU
energy, the memory fallback, windows measured from their own edges, ended processes, and nothing read when no
comparison names processes."""

from __future__ import annotations

import pytest
from support.nvml import FakeGpu, fake_nvml

from tsstats.comparisons.attributor import Attributor
from tsstats.core.inputs import InputError
from tsstats.figures.energy import MachineJoules, gpu_share, share
from tsstats.figures.fairness import cpu_shares, gpu_contention
from tsstats.sources.gpu import NvmlReader
from tsstats.sources.processes import MachineUsage, TreeUsage


def test_shares_are_clipped_ratios():
    assert share(1.0, 4.0) == 0.25
    assert share(5.0, 4.0) == 1.0 and share(-1.0, 4.0) == 0.0 and share(1.0, 0.0) == 0.0
    assert gpu_share({1: 60.0, 2: 20.0, 3: 20.0}, frozenset({1, 3})) == pytest.approx(0.8)
    assert gpu_share({}, frozenset({1})) == 0.0


def test_machine_joules_add_and_subtract_by_component():
    a = MachineJoules(10.0, 2.0, {0: 5.0})
    b = MachineJoules(4.0, 1.0, {0: 2.0, 1: 3.0})
    assert (a - b) == MachineJoules(6.0, 1.0, {0: 3.0, 1: -3.0})
    assert (a + b).total_j == pytest.approx(27.0) and b.gpu_total_j == 5.0


class CannedTrees:
    """Trees whose CPU time and memory the test sets."""

    def __init__(self):
        self.cpu = {}
        self.rss = {}
        self.wait = {}  # ticks runnable but waiting, by process
        self.busy = 0.0
        self.total = 0.0  # the machine's capacity, idle included
        self.service = 0.0  # this service's own CPU time
        self.used = 1000.0

    def exists(self, pid):
        return pid in self.cpu

    def tree(self, pids):
        live = [p for p in pids if p in self.cpu]
        self.reads = getattr(self, "reads", 0) + 1
        return TreeUsage(sum(self.cpu[p] for p in live), sum(self.rss[p] for p in live), frozenset(live), bool(live),
                         sum(self.wait.get(p, 0.0) for p in live))

    def machine(self):
        return MachineUsage(self.busy, self.used, self.total, 0.0, self.service)


class CannedEnergy:
    """The machine's energy since start, set by the test: at the last tick and at this instant."""

    def __init__(self):
        self.tick = MachineJoules()
        self.instant = MachineJoules()

    def set(self, energy: MachineJoules, instant_only: bool = False) -> None:
        self.instant = energy
        if not instant_only:
            self.tick = energy


def attributor_over(trees, gpu_reader=None, energy=None, intensity=100.0, max_trees=64):
    energy = energy or CannedEnergy()
    reader = gpu_reader or NvmlReader(fake_nvml(None, init_fails=True))
    return Attributor(trees, reader, lambda ts: intensity, lambda: energy.instant, lambda: energy.tick,
                      max_trees), energy


def gpu_attributor(gpu: FakeGpu):
    """An attributor over one fake GPU and two idle processes, 101 and 202, at 100 g/kWh; 101 tracked as 1."""
    reader = NvmlReader(fake_nvml([gpu]))
    assert reader.start()
    trees = CannedTrees()
    trees.cpu, trees.rss = {101: 0.0, 202: 0.0}, {101: 0.0, 202: 0.0}
    attributor, energy = attributor_over(trees, reader)
    attributor.track(1, (101,))
    return attributor, energy


def test_gpu_energy_follows_per_process_utilization():
    attributor, energy = gpu_attributor(FakeGpu(processes={101: (75, 1 << 30), 202: (25, 3 << 30)}))
    attributor.track(2, (202,))
    energy.set(MachineJoules(0.0, 0.0, {0: 300.0}))
    attributor.attribute(1000.0)
    first, second = attributor.tracked[1].attributed, attributor.tracked[2].attributed
    assert first.gpu_j == pytest.approx(300.0 * 0.75) and second.gpu_j == pytest.approx(300.0 * 0.25)
    assert first.gpu_method == "utilization"
    assert first.joule_g_per_kwh == pytest.approx(225.0 * 100.0)


def test_gpu_contention_and_the_peak_gpu_memory_of_a_tree():
    gpu = FakeGpu(processes={101: (75, 1 << 30), 202: (25, 3 << 30)})
    attributor, energy = gpu_attributor(gpu)
    attributor.attribute(1000.0)
    gpu.processes = {101: (60, 2 << 30), 202: (40, 1 << 30)}
    attributor.attribute(2000.0)
    gpu.processes = {101: (100, 1 << 30)}
    given = attributor.untrack(1, 2500.0)
    assert given is not None
    assert given.peak_gpu_memory_bytes == 2 << 30  # its own process's most, not the other's
    assert gpu_contention(dict(given.gpu_tree_use), dict(given.gpu_all_use)) == {0: pytest.approx(100 * 65 / 200)}


def test_without_per_process_samples_the_gpu_memory_share_is_used_and_flagged():
    attributor, energy = gpu_attributor(FakeGpu(processes={101: (0, 1 << 30), 202: (0, 3 << 30)},
                                                unsupported=("process_utilization",)))
    energy.set(MachineJoules(0.0, 0.0, {0: 100.0}))
    attributor.attribute(1000.0)
    given = attributor.tracked[1].attributed
    assert given.gpu_j == pytest.approx(25.0) and given.gpu_method == "memory"


def test_cpu_and_memory_shares_and_what_stays_unattributed():
    trees = CannedTrees()
    trees.cpu, trees.rss = {1: 0.0, 2: 0.0}, {1: 300.0, 2: 100.0}
    attributor, energy = attributor_over(trees, intensity=50.0)
    attributor.track(7, (1,))
    attributor.track(8, (2,))
    trees.cpu, trees.busy = {1: 90.0, 2: 5.0}, 100.0
    energy.set(MachineJoules(40.0, 10.0))
    attributor.attribute(1000.0)
    burner, sleeper = attributor.tracked[7].attributed, attributor.tracked[8].attributed
    assert burner.cpu_j == pytest.approx(36.0) and sleeper.cpu_j == pytest.approx(2.0)  # 2 J of 40 unattributed
    assert burner.mem_j == pytest.approx(3.0) and sleeper.mem_j == pytest.approx(1.0)
    assert attributor.untrack(7, 1000.0) == burner and 7 not in attributor.tracked


def test_who_had_the_cpus_is_summed_over_the_reads_from_the_window_s_own_baseline():
    trees = CannedTrees()
    trees.cpu, trees.rss, trees.wait = {1: 50.0}, {1: 0.0}, {1: 7.0}
    trees.busy, trees.total, trees.service = 500.0, 1000.0, 30.0  # before the window: not its own
    attributor, energy = attributor_over(trees)
    attributor.track(1, (1,))
    for step in range(1, 4):  # three seconds on 2 CPUs: the run 40 ticks, others 20, the service 2, 3 waited
        trees.cpu[1] += 40.0
        trees.wait[1] += 3.0
        trees.busy += 62.0
        trees.total += 200.0
        trees.service += 2.0
        attributor.attribute(1000.0 * step)
    given = attributor.untrack(1, 3000.0)
    assert given is not None
    assert (given.tree_cpu, given.busy_cpu, given.capacity_cpu, given.service_cpu, given.tree_wait) == (
        120.0, 186.0, 600.0, 6.0, 9.0)
    shares = cpu_shares(given)
    assert shares.contention_pct == pytest.approx(10.0) and shares.service_pct == pytest.approx(1.0)
    assert shares.wait_pct == pytest.approx(100 * 9 / 129)


def test_a_window_is_measured_from_its_own_edges():
    """A window opened and closed between two ticks gets the counters' own difference over it, not the tick's
    nor the second's; one opened later than another gets none of what came before it."""
    trees = CannedTrees()
    trees.cpu, trees.rss, trees.busy = {1: 0.0}, {1: 0.0}, 0.0
    attributor, energy = attributor_over(trees)
    energy.set(MachineJoules(100.0, 0.0))  # everything before the window opens
    attributor.track("early", (1,))
    energy.set(MachineJoules(103.0, 0.0), instant_only=True)  # 3 J since the last tick, read at the instant
    attributor.track("late", (1,))
    trees.cpu, trees.busy = {1: 10.0}, 10.0  # the tree was all the machine's busy time
    energy.set(MachineJoules(103.5, 0.0), instant_only=True)
    late = attributor.untrack("late", 0.0)
    early = attributor.untrack("early", 0.0)
    assert late.cpu_j == pytest.approx(0.5) and early.cpu_j == pytest.approx(3.5)


def test_a_window_whose_processes_all_exited_is_reported():
    trees = CannedTrees()
    trees.cpu, trees.rss = {1: 0.0, 2: 0.0}, {1: 0.0, 2: 0.0}
    attributor, _ = attributor_over(trees)
    attributor.track(5, (1, 2))
    attributor.track(6, (2,))
    del trees.cpu[1]
    assert attributor.attribute(0.0) == []  # 2 still runs
    del trees.cpu[2]
    assert sorted(attributor.attribute(0.0)) == [5, 6]


def test_nothing_is_read_without_a_comparison_naming_processes():
    class Refusing(CannedTrees):
        def tree(self, pids):
            raise AssertionError("read a tree")

        def machine(self):
            raise AssertionError("read the machine")

    attributor, _ = attributor_over(Refusing())
    assert attributor.attribute(1000.0) == [] and attributor.tracked == {}


def test_a_tree_several_windows_name_is_read_once_a_second_for_all():
    trees = CannedTrees()
    trees.cpu, trees.rss = {1: 0.0, 2: 0.0}, {1: 0.0, 2: 0.0}
    attributor, _ = attributor_over(trees)
    for key in range(500):
        attributor.track(key, (1,))
    attributor.track("other", (2, 1, 2))  # the same processes in another order are another tree: (1, 2)
    trees.reads = 0
    attributor.attribute(1000.0)
    assert trees.reads == 2  # (1,) once for 500 windows, (1, 2) once


def test_the_trees_followed_are_bounded_with_a_409():
    trees = CannedTrees()
    trees.cpu = {pid: 0.0 for pid in range(1, 10)}
    trees.rss = dict.fromkeys(trees.cpu, 0.0)
    attributor, _ = attributor_over(trees, max_trees=3)
    for pid in (1, 2, 3):
        attributor.track(pid, (pid,))
    assert not attributor.can_track((4,)) and attributor.can_track((2,))
    with pytest.raises(InputError) as refused:
        attributor.track(4, (4,))
    assert refused.value.status == 409 and refused.value.field == "pids"
    attributor.track("phase of 2", (2,))  # a tree followed already costs nothing more
    attributor.untrack(1, 0.0)
    attributor.track(4, (4,))  # room again
