"""A comparison's window measured from its own edges, in process with a fake RAPL counter tree: a 0.3 s run
gets the counters' own difference, with and without named processes; a run whose processes exited is failed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from support.powercap import FakePowercap

JOULES = 1.7  # what the package counter moves during the window


def rapl_service(inprocess, tmp_path):
    tree = FakePowercap(tmp_path / "powercap", packages=1)
    tree.set("intel-rapl:0", 5_000_000)
    service = inprocess(powercap=tmp_path / "powercap", proc_root="/proc")  # this machine's processes
    time.sleep(0.3)  # a few ticks read the counters as they are
    return tree, service.client()


@pytest.mark.parametrize("named", [False, True])
def test_a_short_window_gets_the_counters_own_difference(inprocess, tmp_path, named):
    tree, client = rapl_service(inprocess, tmp_path)
    body = {"models": ["short"], "status": "running", **({"pids": [os.getpid()]} if named else {})}
    record = client.post("/api/comparisons", json=body).json()
    tree.set("intel-rapl:0", 5_000_000 + int(JOULES * 1e6))  # dram stays put: 0 J
    time.sleep(0.3)
    done = client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed"}).json()
    assert 0.3 <= done["durationS"] < 5  # the monotonic time between the two writes
    assert done["methods"]["cpu"] == "rapl" and done["methods"]["memory"] == "rapl_dram"
    if named:  # the machine's energy over the window's own edges, whatever the ticks between
        assert done["machineEnergyKwh"] * 3.6e6 == pytest.approx(JOULES, rel=1e-6)
        assert 0 <= done["energyJ"] <= JOULES + 1e-9
    else:  # the only comparison running: all of it
        assert done["energyJ"] == pytest.approx(JOULES, rel=1e-6)
        assert done["carbonG"] == pytest.approx(JOULES / 3.6e6 * 473.0, rel=1e-6)


def wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not true within {timeout} s")


def test_a_report_after_the_processes_exited_is_kept_with_the_window_to_the_exit(inprocess, tmp_path):
    """The normal way to drive a benchmark: name the worker, wait for it, report a second later. The report is
    taken; the energy is the window to the exit, not to the report."""
    tree, client = rapl_service(inprocess, tmp_path)
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    record = client.post("/api/comparisons", json={"models": ["worker"], "status": "running",
                                                   "pids": [worker.pid]}).json()
    tree.set("intel-rapl:0", 5_000_000 + int(JOULES * 1e6))
    worker.wait()
    exited = wait_for(lambda: (found := client.get(f"/api/comparisons/{record['id']}").json())["processesExitedAt"]
                      and found)
    assert exited["status"] == "running" and exited["endedBy"] is None
    assert client.get("/api/dashboard/stats").json()["liveStats"]["activeComparisons"] == 1
    tree.set("intel-rapl:0", 5_000_000 + int(50 * JOULES * 1e6))  # after the exit: not the run's
    time.sleep(0.3)

    done = client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed", "accuracy": 90,
                                                                    "speed": 10})
    assert done.status_code == 200, done.json()
    body = done.json()
    assert body["status"] == "completed" and body["endedBy"] == "client"
    assert (body["accuracy"], body["speed"], body["error"]) == (90, 10, None)
    assert body["finishedAt"] == exited["processesExitedAt"] == exited["finishedAt"]
    assert body["energyJ"] == exited["energyJ"] and body["machineEnergyJ"] == exited["machineEnergyJ"]
    assert body["machineEnergyJ"] < 2 * JOULES  # the counter's move after the exit is not in it
    stats = client.get("/api/dashboard/stats").json()
    assert stats["liveStats"]["activeComparisons"] == 0 and stats["comparisonStats"]["totalComparisons"] == 1


def test_a_run_nobody_reports_on_is_failed_after_the_grace_and_a_late_report_replaces_it(inprocess):
    client = inprocess(proc_root="/proc", report_grace="1").client()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    record = client.post("/api/comparisons", json={"models": ["left"], "status": "running",
                                                   "pids": [child.pid]}).json()
    child.wait()
    failed = wait_for(lambda: (found := client.get(f"/api/comparisons/{record['id']}").json())["status"] != "running"
                      and found)
    assert failed["status"] == "failed" and failed["endedBy"] == "service"
    assert "report_grace (1 s)" in failed["error"] and "still replaces" in failed["error"]
    assert client.get("/api/dashboard/stats").json()["liveStats"]["errorRate"] == 100

    late = client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed", "accuracy": 80})
    assert late.status_code == 200, late.json()
    body = late.json()
    assert (body["status"], body["endedBy"], body["error"], body["accuracy"]) == ("completed", "client", None, 80)
    assert body["finishedAt"] == failed["finishedAt"]
    stats = client.get("/api/dashboard/stats").json()
    assert stats["liveStats"]["errorRate"] == 0 and stats["enterpriseMetrics"]["successRate"] == 100
    assert stats["comparisonStats"]["totalComparisons"] == 1

    again = client.patch(f"/api/comparisons/{record['id']}", json={"status": "failed"})  # the client's is final
    assert again.status_code == 409 and "completed is final" in again.json()["error"]["message"]


def test_a_phase_open_at_the_exit_is_measured_to_it_and_closed_by_the_report(inprocess):
    client = inprocess(proc_root="/proc").client()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    record = client.post("/api/comparisons", json={"models": ["m"], "status": "running", "pids": [child.pid]}).json()
    phase = client.post(f"/api/comparisons/{record['id']}/phases", json={"name": "work"}).json()
    child.wait()
    wait_for(lambda: client.get(f"/api/comparisons/{record['id']}").json()["processesExitedAt"])
    refused = client.post(f"/api/comparisons/{record['id']}/phases", json={"name": "late"})
    assert refused.status_code == 409 and "processes have exited" in refused.json()["error"]["message"]
    closed = client.patch(f"/api/comparisons/{record['id']}/phases/{phase['id']}", json={"status": "completed"})
    assert closed.status_code == 200, closed.json()
    done = client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed"}).json()
    assert done["phases"][0]["status"] == "completed"
    assert done["phases"][0]["finishedAt"] <= done["finishedAt"] == done["processesExitedAt"]
