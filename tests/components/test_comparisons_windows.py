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


def test_a_run_whose_processes_exited_is_failed_within_seconds(inprocess, tmp_path):
    client = inprocess(proc_root="/proc").client()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    record = client.post("/api/comparisons", json={"models": ["left"], "status": "running",
                                                   "pids": [child.pid]}).json()
    child.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = client.get(f"/api/comparisons/{record['id']}").json()
        if found["status"] != "running":
            break
        time.sleep(0.2)
    assert found["status"] == "failed" and "exited" in found["error"]
    assert time.monotonic() < deadline
    assert client.get("/api/dashboard/stats").json()["liveStats"]["activeComparisons"] == 0
