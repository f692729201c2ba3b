"""Studies kept by the service: listed from the trials' metadata, one study's figures computed from its stored
trials as tsstats compare computes them, and deleted whole."""

from __future__ import annotations

import time

from support.answers import error_of
from support.nvml import FakeGpu


def trial(client, study: str, command: str, number: int, warmup: bool = False, items: float = 10) -> int:
    record = client.post("/api/comparisons", json={
        "models": [command], "status": "running", "items": items,
        "metadata": {"study": study, "command": command, "trial": number, "warmup": warmup}}).json()
    client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed"})
    return record["id"]


def test_a_study_is_listed_computed_from_its_trials_and_deleted_whole(inprocess):
    client = inprocess().client()
    for number in range(1, 4):
        trial(client, "s1", "a", number)
        trial(client, "s1", "b", number)
    trial(client, "s1", "a", 0, warmup=True)
    trial(client, "s2", "only", 1)
    client.post("/api/comparisons", json={"models": ["unrelated"]})

    listed = client.get("/api/studies").json()["items"]
    assert [item["id"] for item in listed] == ["s2", "s1"]
    assert (listed[1]["trials"], listed[1]["warmups"], listed[1]["contenders"]) == (6, 1, ["a", "b"])

    study = client.get("/api/studies/s1").json()
    assert study["study"] == "s1" and study["energyUnit"] == "J per item"
    assert [command["name"] for command in study["commands"]] == ["a", "b"]
    assert all(command["time"]["n"] == 3 and len(command["trials"]) + len(command["excluded"]) == 3
               for command in study["commands"])
    assert all(command["time"]["ci_low"] <= command["time"]["mean"] <= command["time"]["ci_high"]
               for command in study["commands"] if command["time"]["n"] >= 2 and command["trials"])
    assert study["ratios"]["energyNetOfIdle"] == [] and study["idleBaseline"] is None  # none measured
    assert set(study["ratios"]) == {"energy", "energyNetOfIdle", "time"}
    assert all("contentionPct" in trial["conditions"] for command in study["commands"] for trial in command["trials"])
    assert any("Command 1: a" in line for line in study["report"])

    assert client.get("/api/studies/nobody").status_code == 404
    trial(client, "two words", "a", 1)  # a name as tsstats compare makes them, %-encoded in the path
    assert client.get("/api/studies/two words").json()["study"] == "two words"
    assert client.delete("/api/studies/two%20words").status_code == 204
    assert error_of(client.get("/api/studies/s1", params={"x": "1"}))["status"] == 400
    assert client.delete("/api/studies/s1").status_code == 204
    assert client.get("/api/studies/s1").status_code == 404
    assert [item["id"] for item in client.get("/api/studies").json()["items"]] == ["s2"]
    assert client.delete("/api/studies/s1").status_code == 404
    remaining = client.get("/api/comparisons").json()["items"]
    assert {tuple(item["models"]) for item in remaining} == {("only",), ("unrelated",)}


def test_the_machine_now_is_the_last_whole_second_by_whom_with_the_temperatures(inprocess):
    client = inprocess(gpus=[FakeGpu(temperature=61)]).client()
    deadline = time.monotonic() + 10
    while (answer := client.get("/api/conditions")).status_code == 503 and time.monotonic() < deadline:
        assert answer.headers["retry-after"] == "1"
        time.sleep(0.2)
    now = answer.json()
    assert answer.status_code == 200 and now["windowS"] > 0 and now["gpuTemperatureC"] == {"0": 61.0}
    assert now["limits"] == {"contentionPct": 10.0} and now["takenAt"].endswith("Z")
    assert now["cpuPct"] is None and "cpuPct" in now["unavailable"] and now["quiet"] is True  # a canned /proc/stat
    assert 0 <= now["serviceCpuPct"] <= 100
    assert error_of(client.get("/api/conditions", params={"x": "1"}))["status"] == 400
    assert client.post("/api/conditions").status_code == 405
