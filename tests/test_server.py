"""The real server on a free port with a real DuckDB file, driven by a real HTTP client."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from conftest import ServerProcess, error_of

from tsstats.sources.host import parse_snmp_curr_estab


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("server") / "tsstats.duckdb"
    with ServerProcess(db) as running:
        yield running


@pytest.fixture
def client(server):
    with server.client() as http:
        yield http


def fresh_stats(client: httpx.Client) -> dict:
    response = client.get("/api/dashboard/stats")
    assert response.status_code == 200
    return response.json()


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# -- the stats endpoint ---------------------------------------------------------------------------------
def test_stats_contract_field_by_field(client):
    response = client.get("/api/dashboard/stats")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/json")
    stats = response.json()
    expected = {
        "systemMetrics": ["cpuUsage", "gpuUsage", "memoryUsage", "networkLatency", "activeConnections"],
        "liveStats": ["activeComparisons", "queueLength", "systemLoad", "carbonFootprint", "energyConsumption",
                      "uptime", "responseTime", "errorRate"],
        "sustainability": ["totalCarbonSaved", "greenScore", "energyEfficiency", "renewableEnergyUsage",
                           "carbonOffset"],
        "comparisonStats": ["totalComparisons", "modelsCompared", "averageAccuracy", "averageSpeed"],
    }
    assert list(stats) == [*expected, "meta"]
    for group, fields in expected.items():
        assert list(stats[group]) == fields
        for name in fields:
            value = stats[group][name]
            assert type(value) in (int, float) and math.isfinite(value), (name, value)
    meta = stats["meta"]
    assert meta["generatedAt"].endswith("Z") and meta["sampleIntervalMs"] == 100.0
    # no GPU and no RAPL here: GPU is unavailable, energy is estimated
    assert "gpuUsage" in meta["unavailable"] and stats["systemMetrics"]["gpuUsage"] == 0
    assert meta["sources"]["gpu"] == "absent" and meta["sources"]["cpuPower"] == "tdp_model"
    assert "energyConsumption" in meta["estimated"]
    assert 0 <= stats["systemMetrics"]["cpuUsage"] <= 100
    assert stats["sustainability"]["renewableEnergyUsage"] == 32.0  # WORLD
    assert "totalCarbonSaved" in meta["unavailable"]  # no baseline declared


def test_readings_agree_with_proc(client):
    stats = fresh_stats(client)
    with open("/proc/meminfo") as handle:
        info = {line.split(":")[0]: int(line.split()[1]) for line in handle}
    memory = 100.0 * (info["MemTotal"] - info["MemAvailable"]) / info["MemTotal"]
    assert stats["systemMetrics"]["memoryUsage"] == pytest.approx(memory, abs=3.0)
    with open("/proc/loadavg") as handle:
        load = float(handle.read().split()[0])
    assert stats["liveStats"]["systemLoad"] == pytest.approx(100.0 * load / os.cpu_count(), abs=60.0 / os.cpu_count())
    with open("/proc/net/snmp") as handle:
        established = parse_snmp_curr_estab(handle.read())
    # the client's own keep-alive connection is counted on both ends; allow for connections opening meanwhile
    assert abs(stats["systemMetrics"]["activeConnections"] - established) <= 4


def test_cpu_usage_rises_while_every_core_burns(client):
    def cpu() -> float:
        time.sleep(1.2)
        return fresh_stats(client)["systemMetrics"]["cpuUsage"]

    before = min(cpu(), cpu())
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count())]
    try:
        during = wait_for(lambda: (value := cpu()) > 85 and value, timeout=10.0) or cpu()
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert during > 85 and during > before + 30, (before, during)


def test_stream_sends_stats_events(server):
    with httpx.stream("GET", server.url + "/api/dashboard/stream", timeout=10.0) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        lines = response.iter_lines()
        started = time.monotonic()
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
                if len(events) == 2:
                    break
        elapsed = time.monotonic() - started
    assert len(events) == 2 and set(events[1]) >= {"systemMetrics", "liveStats", "meta"}
    assert events[0]["meta"]["generatedAt"] < events[1]["meta"]["generatedAt"]
    assert elapsed < 5


def test_request_accounting(client):
    for _ in range(5):
        client.get("/api/dashboard/stats")
    stats = wait_for(lambda: (s := fresh_stats(client))["liveStats"]["responseTime"] > 0 and s, timeout=4)
    assert stats and stats["liveStats"]["responseTime"] > 0
    assert stats["liveStats"]["errorRate"] == 0  # 4xx answers are not server errors


# -- comparisons ----------------------------------------------------------------------------------------
def test_comparison_flow(client):
    created = client.post("/api/comparisons", json={"models": ["alpha", "beta"], "name": "first",
                                                    "metadata": {"suite": "mmlu"}})
    assert created.status_code == 201
    record = created.json()
    assert set(record) == {"id", "name", "models", "status", "createdAt", "startedAt", "finishedAt", "accuracy",
                           "speed", "error", "metadata", "energyKwh", "carbonKg"}
    assert record["status"] == "queued" and record["startedAt"] is None and record["metadata"] == {"suite": "mmlu"}
    cid = record["id"]
    assert client.get(f"/api/comparisons/{cid}").json() == record
    stats = fresh_stats(client)
    assert stats["liveStats"]["queueLength"] >= 1

    running = client.patch(f"/api/comparisons/{cid}", json={"status": "running"}).json()
    assert running["status"] == "running" and running["startedAt"] is not None
    assert fresh_stats(client)["liveStats"]["activeComparisons"] >= 1
    time.sleep(1.5)
    done = client.patch(f"/api/comparisons/{cid}", json={"status": "completed", "accuracy": 91.5, "speed": 12})
    assert done.status_code == 200
    done = done.json()
    assert done["status"] == "completed" and done["accuracy"] == 91.5 and done["speed"] == 12
    assert done["finishedAt"] >= done["startedAt"]
    assert done["energyKwh"] > 0 and done["carbonKg"] == pytest.approx(done["energyKwh"] * 473 / 1000)

    stats = fresh_stats(client)["comparisonStats"]
    assert stats["totalComparisons"] >= 1 and stats["modelsCompared"] >= 2
    assert 0 < stats["averageAccuracy"] <= 100

    again = client.patch(f"/api/comparisons/{cid}", json={"status": "running"})
    assert again.status_code == 409 and error_of(again)["field"] == "status"


def test_comparison_running_at_creation_and_cancel(client):
    record = client.post("/api/comparisons", json={"models": ["x"], "status": "running"}).json()
    assert record["status"] == "running" and record["startedAt"] == record["createdAt"]
    assert record["name"] == "x"
    cancelled = client.patch(f"/api/comparisons/{record['id']}", json={"status": "cancelled"}).json()
    assert cancelled["status"] == "cancelled"
    queued = client.post("/api/comparisons", json={"models": ["y", "z"]}).json()
    assert client.patch(f"/api/comparisons/{queued['id']}", json={"status": "completed"}).status_code == 409
    assert client.patch(f"/api/comparisons/{queued['id']}", json={"status": "cancelled"}).status_code == 200


def test_comparison_listing_and_pages(client):
    ids = [client.post("/api/comparisons", json={"models": [f"m{i}"]}).json()["id"] for i in range(5)]
    page = client.get("/api/comparisons", params={"limit": 2}).json()
    assert [item["id"] for item in page["items"]] == ids[::-1][:2]
    assert page["next"] is not None
    second = client.get("/api/comparisons", params={"limit": 2, "before": page["next"]}).json()
    assert [item["id"] for item in second["items"]] == ids[::-1][2:4]
    queued = client.get("/api/comparisons", params={"status": "queued", "limit": 500}).json()
    assert all(item["status"] == "queued" for item in queued["items"])
    assert set(ids) <= {item["id"] for item in queued["items"]}
    everything = client.get("/api/comparisons", params={"limit": 500}).json()
    assert everything["next"] is None


def test_offsets(client):
    before = fresh_stats(client)["sustainability"]["carbonOffset"]
    created = client.post("/api/offsets", json={"kg": 2.5, "note": "tree planting", "at": "-1d"})
    assert created.status_code == 201 and created.json()["kg"] == 2.5
    listed = client.get("/api/offsets").json()
    assert listed["items"][0]["note"] == "tree planting" and listed["totalKg"] >= 2.5
    after = fresh_stats(client)["sustainability"]["carbonOffset"]
    assert after == pytest.approx(before + 2.5)
    assert fresh_stats(client)["liveStats"]["carbonFootprint"] >= 0  # offsets never subtracted


def test_energy_route(client):
    body = client.get("/api/energy", params={"from": "-1h", "to": "now"}).json()
    assert set(body) >= {"from", "to", "energyKwh", "carbonKg", "gPerKwh", "methods"}
    energy = body["energyKwh"]
    assert energy["total"] == pytest.approx(energy["cpu"] + energy["gpu"] + energy["memory"])
    assert energy["total"] > 0 and energy["gpu"] == 0
    assert body["carbonKg"] == pytest.approx(energy["total"] * body["gPerKwh"] / 1000)
    assert body["methods"] == {"cpu": "tdp_model", "gpu": "absent", "memory": "dimm_model"}


# -- bad input ------------------------------------------------------------------------------------------
BAD_BODIES = [
    ({"name": "no models"}, 400, "models"),
    ({"models": "alpha"}, 400, "models"),
    ({"models": []}, 400, "models"),
    ({"models": [f"m{i}" for i in range(33)]}, 400, "models"),
    ({"models": [""]}, 400, "models"),
    ({"models": ["x" * 201]}, 400, "models"),
    ({"models": [1, 2]}, 400, "models"),
    ({"models": ["a"], "status": "completed"}, 400, "status"),
    ({"models": ["a"], "name": 5}, 400, "name"),
    ({"models": ["a"], "metadata": []}, 400, "metadata"),
    ({"models": ["a"], "metadata": {"blob": "x" * 17000}}, 400, "metadata"),
    ({"models": ["a"], "colour": "red"}, 400, "colour"),
    ([1, 2, 3], 400, None),
]


@pytest.mark.parametrize("body, status, field", BAD_BODIES)
def test_bad_comparison_bodies(client, body, status, field):
    before = len(client.get("/api/comparisons", params={"limit": 500}).json()["items"])
    response = client.post("/api/comparisons", json=body)
    assert response.status_code == status
    assert error_of(response).get("field") == field
    assert len(client.get("/api/comparisons", params={"limit": 500}).json()["items"]) == before


BAD_UPDATES = [
    ({}, 400, "status"),
    ({"status": "finished"}, 400, "status"),
    ({"status": "completed", "accuracy": 101}, 400, "accuracy"),
    ({"status": "completed", "accuracy": -1}, 400, "accuracy"),
    ({"status": "completed", "accuracy": "high"}, 400, "accuracy"),
    ({"status": "completed", "accuracy": True}, 400, "accuracy"),
    ({"status": "completed", "speed": -3}, 400, "speed"),
    ({"status": "completed", "speed": 1e300}, 400, "speed"),
    ({"status": "failed", "error": 42}, 400, "error"),
    ({"status": "completed", "extra": 1}, 400, "extra"),
]


@pytest.mark.parametrize("body, status, field", BAD_UPDATES)
def test_bad_updates_leave_the_record_alone(client, body, status, field):
    record = client.post("/api/comparisons", json={"models": ["a"], "status": "running"}).json()
    response = client.patch(f"/api/comparisons/{record['id']}", json=body)
    assert response.status_code == status and error_of(response)["field"] == field
    assert client.get(f"/api/comparisons/{record['id']}").json() == record


def test_raw_bad_requests(client):
    headers = {"content-type": "application/json"}
    malformed = client.post("/api/comparisons", content=b'{"models": ["a",', headers=headers)
    assert malformed.status_code == 400 and "not valid JSON" in error_of(malformed)["message"]
    nan = client.post("/api/comparisons", content=b'{"models": ["a"], "metadata": {"x": NaN}}', headers=headers)
    assert nan.status_code == 400
    empty = client.post("/api/comparisons", content=b"", headers=headers)
    assert empty.status_code == 400
    not_json = client.post("/api/comparisons", content=b"models=a", headers={"content-type": "text/plain"})
    assert not_json.status_code == 415
    form = client.post("/api/comparisons", data={"models": "a"})
    assert form.status_code == 415
    latin = client.post("/api/comparisons", content=b'{"models": ["\xff"]}', headers=headers)
    assert latin.status_code == 400
    deep = client.post("/api/comparisons", content=b'{"models": ["a"], "metadata": {"x": ' + b"[" * 100_000
                       + b"]" * 100_000 + b"}}", headers=headers)
    assert deep.status_code == 400 and "deeply" in error_of(deep)["message"]
    huge = client.post("/api/comparisons", content=b'{"models": ["' + b"a" * (1024 * 1024 + 10) + b'"]}',
                       headers=headers)
    assert huge.status_code == 413
    error_of(huge)


def test_unknown_routes_ids_and_methods(client):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and error_of(missing)
    assert client.get("/").status_code == 404
    for path in ("/api/comparisons/999999", "/api/comparisons/abc", "/api/comparisons/-1"):
        response = client.get(path)
        assert response.status_code == 404, path
        error_of(response)
    assert client.patch("/api/comparisons/999999", json={"status": "running"}).status_code == 404
    wrong = client.delete("/api/comparisons")
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"]
    error_of(wrong)
    assert client.post("/api/dashboard/stats", json={}).status_code == 405
    assert client.put("/api/comparisons/1", json={}).status_code == 405


@pytest.mark.parametrize("params, field", [
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"status": "sleeping"}, "status"), ({"before": "x"}, "before"), ({"sort": "asc"}, "sort"),
])
def test_bad_list_parameters(client, params, field):
    response = client.get("/api/comparisons", params=params)
    assert response.status_code == 400 and error_of(response)["field"] == field


@pytest.mark.parametrize("body, field", [
    ({"kg": 0}, "kg"), ({"kg": -1}, "kg"), ({"kg": "1"}, "kg"), ({}, "kg"), ({"kg": 1e12}, "kg"),
    ({"kg": 1, "at": "someday"}, "at"), ({"kg": 1, "at": True}, "at"), ({"kg": 1, "note": ["x"]}, "note"),
])
def test_bad_offsets(client, body, field):
    before = client.get("/api/offsets").json()["totalKg"]
    response = client.post("/api/offsets", json=body)
    assert response.status_code == 400 and error_of(response)["field"] == field
    assert client.get("/api/offsets").json()["totalKg"] == before


@pytest.mark.parametrize("params, field", [
    ({"from": "yesterday"}, "from"), ({"to": "2026-13-45T00:00:00Z"}, "to"), ({"from": "now", "to": "-1h"}, "from"),
    ({"window": "1h"}, "window"),
])
def test_bad_energy_parameters(client, params, field):
    response = client.get("/api/energy", params=params)
    assert response.status_code == 400 and error_of(response)["field"] == field


# -- operations -----------------------------------------------------------------------------------------
def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["lastSampleAgeS"] < 1 and body["database"]["writable"] is True


def test_cors(client):
    origin = "http://localhost:3000"
    preflight = client.options("/api/comparisons", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    actual = client.get("/api/dashboard/stats", headers={"Origin": origin})
    assert actual.headers["access-control-allow-origin"] == origin
    other = client.get("/api/dashboard/stats", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    blocked = client.options("/api/comparisons", headers={"Origin": "http://evil.example",
                                                         "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in blocked.headers


# -- life cycle, security -------------------------------------------------------------------------------
def test_token_guards_every_route_but_healthz(server_factory):
    server = server_factory(env={"TSSTATS_TOKEN": "s3cret"})
    bare = httpx.Client(base_url=server.url, timeout=5)
    for path in ("/api/dashboard/stats", "/api/comparisons", "/metrics", "/api/energy"):
        response = bare.get(path)
        assert response.status_code == 401, path
        error_of(response)
    assert bare.get("/api/dashboard/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert bare.get("/healthz").status_code == 200
    with server.client() as client:
        assert client.get("/api/dashboard/stats").status_code == 200
    # a browser's preflight carries no token and must still pass
    preflight = bare.options("/api/dashboard/stats", headers={"Origin": "http://localhost:3000",
                                                              "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204


def test_non_loopback_host_needs_a_token_or_a_flag(server_factory):
    refused = server_factory("--host", "0.0.0.0", start=False)
    refused.start(wait=False)
    code = refused.process.wait(15)
    output = refused.process.stdout.read()
    assert code != 0 and "refusing to listen on 0.0.0.0" in output and "--allow-remote" in output
    allowed = server_factory("--host", "0.0.0.0", "--allow-remote")
    assert httpx.get(allowed.url + "/healthz").status_code == 200


def test_second_server_on_the_same_file_exits_at_once(server_factory, tmp_path):
    first = server_factory()
    second = server_factory(db=first.db, start=False)
    started = time.monotonic()
    second.start(wait=False)
    code = second.process.wait(20)
    output = second.process.stdout.read()
    assert code != 0 and time.monotonic() - started < 15
    assert str(first.db) in output and "in use" in output
    assert f"PID {first.process.pid}" in output
    assert httpx.get(first.url + "/healthz").status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_restart_keeps_every_comparison(server_factory, tmp_path, sig):
    db = tmp_path / f"restart-{sig}.duckdb"
    server = server_factory(db=db)
    with server.client() as client:
        ids = [client.post("/api/comparisons", json={"models": ["a", f"b{i}"]}).json()["id"] for i in range(3)]
        client.patch(f"/api/comparisons/{ids[0]}", json={"status": "running"})
        client.post("/api/offsets", json={"kg": 1.25})
        before = client.get("/api/comparisons", params={"limit": 500}).json()
    assert server.stop(sig) == 0, server.output
    again = server_factory(db=db)
    with again.client() as client:
        after = client.get("/api/comparisons", params={"limit": 500}).json()
        assert after == before
        stats = client.get("/api/dashboard/stats").json()
        assert stats["liveStats"]["activeComparisons"] == 1 and stats["liveStats"]["queueLength"] == 2
        assert stats["sustainability"]["carbonOffset"] == 1.25
        new = client.post("/api/comparisons", json={"models": ["c"]}).json()
        assert new["id"] > max(ids)


def test_kill_9_loses_at_most_the_last_flush(server_factory, tmp_path):
    db = tmp_path / "crash.duckdb"
    server = server_factory(db=db)
    with server.client() as client:
        created = client.post("/api/comparisons", json={"models": ["a"]}).json()
    time.sleep(2.5)
    killed_at = time.time() * 1000
    server.process.kill()
    server.process.wait()
    again = server_factory(db=db)
    with again.client() as client:
        assert client.get(f"/api/comparisons/{created['id']}").json() == created
    import duckdb

    again.stop()
    con = duckdb.connect(str(db), read_only=True)
    last = con.execute("SELECT max(ts_ms) FROM samples WHERE ts_ms < ?", [killed_at]).fetchone()[0]
    con.close()
    assert killed_at - last < 2000  # flush every second: at most the last flush is lost
