"""Energy of the work itself: comparisons that name their processes get those processes' share of the
machine's energy. Real processes on this machine for CPU, fake NVML per-process samples for GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import FakeGpu, ServerProcess, error_of, fake_nvml

from tsstats.attribution import Attributor, gpu_share, share
from tsstats.sources.nvml import GpuReading, NvmlReader
from tsstats.sources.processes import MachineUsage, ProcfsTrees, TreeUsage

BURN = "import time\nwhile True:\n    pass\n"
SLEEP = "import time\ntime.sleep(600)\n"


@pytest.fixture
def two_processes():
    """One process burning a CPU, one sleeping; both ended after the test."""
    burner = subprocess.Popen([sys.executable, "-c", BURN])
    sleeper = subprocess.Popen([sys.executable, "-c", SLEEP])
    yield burner, sleeper
    for process in (burner, sleeper):
        process.kill()
        process.wait()


def test_shares_are_clipped_ratios():
    assert share(1.0, 4.0) == 0.25
    assert share(5.0, 4.0) == 1.0 and share(-1.0, 4.0) == 0.0 and share(1.0, 0.0) == 0.0
    assert gpu_share({1: 60.0, 2: 20.0, 3: 20.0}, frozenset({1, 3})) == pytest.approx(0.8)
    assert gpu_share({}, frozenset({1})) == 0.0


def test_a_tree_counts_its_children(two_processes):
    """A shell whose child burns: the shell's tree holds the child and its CPU time."""
    parent = subprocess.Popen(["sh", "-c", f"{sys.executable} -c 'while True: pass' & wait"])
    try:
        trees = ProcfsTrees()
        time.sleep(0.5)
        first = trees.tree((parent.pid,))
        time.sleep(1.0)
        second = trees.tree((parent.pid,))
        assert len(first.members) >= 2  # the shell and its python child
        ticks_per_s = os.sysconf("SC_CLK_TCK")
        assert (second.cpu_ticks - first.cpu_ticks) / ticks_per_s > 0.5  # the child burned most of a second
        assert not trees.exists(2 ** 22) and trees.exists(os.getpid())
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)])
        parent.kill()
        parent.wait()


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


def test_a_burner_gets_most_of_the_cpu_energy_against_a_sleeper(tmp_path, two_processes):
    """Two real processes on this machine, named by two comparisons over the same 4 s: the burner gets at least
    90 % of the CPU energy attributed to either (TDP model here; RAPL where readable)."""
    burner, sleeper = two_processes
    with ServerProcess(tmp_path / "attr.duckdb") as server, server.client() as client:
        ids = []
        for process in (burner, sleeper):
            created = client.post("/api/comparisons", json={"models": ["m"], "status": "running",
                                                           "pids": [process.pid]})
            assert created.status_code == 201, created.text
            assert created.json()["attribution"] == "process" and created.json()["pids"] == [process.pid]
            ids.append(created.json()["id"])
        time.sleep(4.0)
        done = [client.patch(f"/api/comparisons/{i}", json={"status": "completed"}).json() for i in ids]
        plain = client.post("/api/comparisons", json={"models": ["m"], "status": "running"}).json()
        time.sleep(1.0)
        plain = client.patch(f"/api/comparisons/{plain['id']}", json={"status": "completed"}).json()
    burner_kwh, sleeper_kwh = (record["energyByComponentKwh"]["cpu"] for record in done)
    assert burner_kwh > 0 and burner_kwh / (burner_kwh + sleeper_kwh) >= 0.9, done
    for record in done:
        assert record["machineEnergyKwh"] >= record["energyKwh"]  # the rest stays unattributed
        assert record["carbonKg"] > 0 or record["energyKwh"] == 0
    assert plain["attribution"] == "time_share" and plain["pids"] is None and plain["energyKwh"] > 0
    assert plain["energyByComponentKwh"] is None and plain["machineEnergyKwh"] is None


def test_gpu_share_of_real_processes_through_the_service(tmp_path, two_processes):
    """Fake NVML reports per-process SM utilization for two real processes: 80 % and 20 %."""
    burner, sleeper = two_processes
    gpus = [{"name": "Fake", "util": 100, "power_mw": 200_000,
             "processes": [{"pid": burner.pid, "sm": 80}, {"pid": sleeper.pid, "sm": 20}]}]
    with ServerProcess(tmp_path / "gpu.duckdb", gpus=gpus) as server, server.client() as client:
        ids = [client.post("/api/comparisons", json={"models": ["m"], "status": "running",
                                                     "pids": [process.pid]}).json()["id"]
               for process in (burner, sleeper)]
        time.sleep(3.0)
        done = [client.patch(f"/api/comparisons/{i}", json={"status": "completed"}).json() for i in ids]
    assert all(record["gpuShare"] == "utilization" for record in done), done
    # GPU energy dominates (200 W); the burner also has most of the CPU share
    assert done[0]["energyKwh"] > 3 * done[1]["energyKwh"] > 0, done


@pytest.mark.parametrize("pids, words", [
    ([0], "positive integer"), ([-5], "positive integer"), (["12"], "positive integer"), ([True], "positive integer"),
    ([1.5], "positive integer"), ([], "1 to 256"), ("123", "list"), (list(range(1, 258)), "at most 256"),
    ([2 ** 22 + 1], "positive integer"), ([4_000_000], "no running process"),
])
def test_bad_pids_are_400s_naming_the_field(api, pids, words):
    for method, path, body in (("POST", "/api/comparisons", {"models": ["a"], "pids": pids}),
                               ("PATCH", "/api/comparisons/1", {"status": "running", "pids": pids})):
        if method == "PATCH":
            api.post("/api/comparisons", json={"models": ["a"]})
        response = api.request(method, path, json=body)
        error = error_of(response)
        assert response.status_code == 400 and error["field"] == "pids" and words in error["message"], error
