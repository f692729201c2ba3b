"""Energy of the work itself: comparisons that name their processes get those processes' share of the
machine's energy. Real processes on this machine for CPU, fake NVML per-process samples for GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from support.answers import error_of
from support.server import ServerProcess

from tsstats.sources.processes import ProcfsTrees

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


def test_a_tree_counts_its_children(two_processes):
    """A shell whose child burns: the shell's tree holds the child, and its CPU time grows more than a sleeping
    process's over the same second (a relation: a busy machine may give the burner any share of a core)."""
    _, sleeper = two_processes
    parent = subprocess.Popen(["sh", "-c", f"{sys.executable} -c 'while True: pass' & wait"])
    try:
        trees = ProcfsTrees()
        time.sleep(0.5)
        first, sleeper_first = trees.tree((parent.pid,)), trees.tree((sleeper.pid,))
        time.sleep(1.0)
        second, sleeper_second = trees.tree((parent.pid,)), trees.tree((sleeper.pid,))
        assert len(first.members) >= 2  # the shell and its python child
        burned = second.cpu_ticks - first.cpu_ticks
        slept = sleeper_second.cpu_ticks - sleeper_first.cpu_ticks
        assert burned > 0 and burned > slept  # the child's time is counted in the shell's tree
        assert not trees.exists(2 ** 22) and trees.exists(os.getpid())
    finally:
        subprocess.run(["pkill", "-P", str(parent.pid)])
        parent.kill()
        parent.wait()


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
    # contention: the burner is among the others of the sleeper's run, not of its own (a share of the
    # machine's capacity: a core of two is half of it, a core of sixteen 6 %)
    burner_run, sleeper_run = done
    assert burner_run["conditions"]["contentionPct"] < sleeper_run["conditions"]["contentionPct"]
    assert sleeper_run["conditions"]["serviceCpuPct"] is not None
    assert plain["conditions"]["contentionPct"] is None  # without pids: unavailable, not guessed
    assert "contentionPct" in plain["conditions"]["unavailable"]


def test_a_cpu_bound_run_beside_a_burner_on_every_cpu_is_unfair(tmp_path):
    """A run burning one CPU while as many burners as CPUs run outside it: others had most of the machine, and
    the run waited for a CPU while they ran; both are reasons (a busier machine only adds to either)."""
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(os.cpu_count() or 1)]
    run = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        with ServerProcess(tmp_path / "burners.duckdb") as server, server.client() as client:
            created = client.post("/api/comparisons", json={"models": ["m"], "status": "running",
                                                           "pids": [run.pid]}).json()
            time.sleep(3.0)
            done = client.patch(f"/api/comparisons/{created['id']}", json={"status": "completed"}).json()
    finally:
        for process in (*burners, run):
            process.kill()
            process.wait()
    conditions = done["conditions"]
    assert done["fair"] is False and conditions["contentionPct"] > 40, done
    assert any(reason.startswith("contention ") for reason in done["unfairReasons"]), done
    if conditions["cpuDeniedPct"] is not None:  # kernels with schedstats
        assert conditions["cpuDeniedPct"] > 10 and conditions["cpuWaitPct"] >= conditions["cpuDeniedPct"], done


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


def test_many_comparisons_naming_one_tree_cost_one_walk_and_trees_are_bounded(tmp_path, two_processes):
    """500 running comparisons naming pid 1 (every process on the machine is in its tree) are one tree read
    once a second: the sampler keeps its pace; one tree more than max_tracked_trees is a 409 that stores
    nothing, and a restart follows them again."""
    burner, sleeper = two_processes
    db = tmp_path / "trees.duckdb"
    with ServerProcess(db, "--max-tracked-trees", "2", host_hardware=False) as server, server.client() as client:
        for _ in range(500):
            created = client.post("/api/comparisons", json={"models": ["m"], "status": "running", "pids": [1]})
            assert created.status_code == 201, created.text
        second = client.post("/api/comparisons", json={"models": ["m"], "status": "running", "pids": [burner.pid]})
        assert second.status_code == 201
        listed = client.get("/api/comparisons", params={"limit": 1}).json()["items"][0]["id"]
        refused = client.post("/api/comparisons", json={"models": ["m"], "status": "running",
                                                        "pids": [sleeper.pid]})
        assert refused.status_code == 409 and error_of(refused)["field"] == "pids", refused.text
        assert "max_tracked_trees" in error_of(refused)["message"]
        assert client.get("/api/comparisons", params={"limit": 1}).json()["items"][0]["id"] == listed
        time.sleep(3.0)
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["lastSampleAgeS"] < 3.0, health  # sampling goes on (stalled: 5 s)
    again = ServerProcess(db, "--max-tracked-trees", "2")
    with again, again.client() as client:
        time.sleep(2.0)
        health = client.get("/healthz").json()
        assert health["status"] == "ok" and health["lastSampleAgeS"] < 3.0, health  # sampling goes on (stalled: 5 s)
        assert client.get("/api/dashboard/stats").json()["liveStats"]["activeComparisons"] == 501
