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

from tsstats.sources.host import cpu_busy_pct, parse_snmp_curr_estab, parse_stat


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
    assert {group: list(units) for group, units in meta["units"].items()} == expected
    assert meta["units"]["liveStats"]["carbonFootprint"] == "g CO2e"  # the dashboard draws grams
    assert meta["units"]["liveStats"]["energyConsumption"] == "kWh"
    assert meta["units"]["liveStats"]["responseTime"] == "ms"
    # the server sees the fake pynvml without a driver and an empty powercap tree: GPU unavailable, energy
    # estimated
    assert "gpuUsage" in meta["unavailable"] and stats["systemMetrics"]["gpuUsage"] == 0
    assert meta["sources"]["gpu"] == "absent" and meta["sources"]["cpuPower"] == "tdp_model"
    assert "energyConsumption" in meta["estimated"]
    assert 0 <= stats["systemMetrics"]["cpuUsage"] <= 100
    assert stats["sustainability"]["renewableEnergyUsage"] == 32.0  # WORLD
    assert "totalCarbonSaved" in meta["unavailable"]  # no baseline declared
    # carbon in grams over the report window: energy (kWh) x 473 g/kWh
    live = stats["liveStats"]
    assert live["carbonFootprint"] == pytest.approx(live["energyConsumption"] * 473.0, rel=1e-4)


def test_stats_on_this_host_are_consistent(server_factory):
    """On the host's own hardware, whatever it is: each figure agrees with the method meta names for it."""
    server = server_factory(host_hardware=True)
    with server.client() as client:
        stats = client.get("/api/dashboard/stats").json()
    meta, system = stats["meta"], stats["systemMetrics"]
    if meta["sources"]["gpu"] == "absent":
        assert system["gpuUsage"] == 0 and "gpuUsage" in meta["unavailable"] and meta["gpus"] == []
    else:
        assert meta["sources"]["gpu"] == "nvml" and 0 <= system["gpuUsage"] <= 100 and meta["gpus"]
    assert meta["sources"]["cpuPower"] in ("rapl", "tdp_model")
    metered = meta["sources"]["cpuPower"] == "rapl" and meta["sources"]["memoryPower"] == "rapl_dram"
    assert ("energyConsumption" in meta["estimated"]) == (not metered)
    assert stats["liveStats"]["energyConsumption"] >= 0

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


def read_cpu_times():
    with open("/proc/stat") as handle:
        return parse_stat(handle.read())[0]


def test_cpu_usage_agrees_with_proc_stat_idle_and_burning(server_factory):
    """The stored cpuUsage over a window against /proc/stat read by the test over the same window."""
    server = server_factory("--flush-interval", "0.5s")

    def over_window(client: httpx.Client, seconds: float) -> tuple[float, float]:
        started, before = time.time(), read_cpu_times()
        time.sleep(seconds)
        after, ended = read_cpu_times(), time.time()
        time.sleep(1.5)  # flushed
        history = client.get("/api/history", params={"metrics": "cpuUsage", "from": f"{started:.3f}",
                                                      "to": f"{ended:.3f}", "step": "100ms"}).json()
        values = [value for ts, value in zip(history["timestamps"], history["series"]["cpuUsage"]["avg"],
                                             strict=True)
                  if value is not None and started * 1000 <= ts and ts + 100 <= ended * 1000]
        assert len(values) >= 10 * seconds * 0.8, len(values)
        return sum(values) / len(values), cpu_busy_pct(before, after)

    with server.client() as client:
        idle_service, idle_proc = over_window(client, 3.0)
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count())]
        try:
            time.sleep(0.5)
            busy_service, busy_proc = over_window(client, 3.0)
        finally:
            for burner in burners:
                burner.kill()
                burner.wait()
    assert idle_service == pytest.approx(idle_proc, abs=10.0), (idle_service, idle_proc)
    assert busy_service == pytest.approx(busy_proc, abs=10.0), (busy_service, busy_proc)
    assert busy_proc > idle_proc  # the burners did burn


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


def metric_value(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_request_accounting_goes_to_metrics_and_meta_service(client):
    before = client.get("/metrics").text
    for _ in range(5):
        assert client.get("/api/comparisons").status_code == 200
    assert client.get("/api/comparisons/999999").status_code == 404
    after = client.get("/metrics").text  # /metrics itself is not an API request: not counted
    assert metric_value(after, 'tsstats_http_requests_total{code="2xx"}') - \
        metric_value(before, 'tsstats_http_requests_total{code="2xx"}') == 5
    assert metric_value(after, 'tsstats_http_requests_total{code="4xx"}') - \
        metric_value(before, 'tsstats_http_requests_total{code="4xx"}') == 1
    assert metric_value(after, "tsstats_http_request_duration_seconds_count") - \
        metric_value(before, "tsstats_http_request_duration_seconds_count") == 6
    assert metric_value(after, "tsstats_http_request_duration_seconds_sum") > \
        metric_value(before, "tsstats_http_request_duration_seconds_sum")
    time.sleep(1.1)  # older than update_interval: the next stats are built afresh
    service = fresh_stats(client)["meta"]["service"]
    assert service["requests"] >= 6 and service["meanResponseMs"] > 0 and service["windowS"] == 300
    assert service["serverErrorPct"] == 0  # 4xx answers are not server errors


def test_response_time_and_error_rate_describe_the_comparisons(server_factory):
    server = server_factory()
    with server.client() as client:
        stats = client.get("/api/dashboard/stats").json()
        assert stats["liveStats"]["responseTime"] == 0 and stats["liveStats"]["errorRate"] == 0
        assert {"responseTime", "errorRate"} <= set(stats["meta"]["unavailable"])
        ids = [client.post("/api/comparisons", json={"models": ["a", "b"], "status": "running"}).json()["id"]
               for _ in range(4)]
        finals = [("completed", 100.0), ("completed", 300.0), ("failed", 200.0), ("cancelled", None)]
        for cid, (status, latency) in zip(ids, finals, strict=True):
            body = {"status": status} if latency is None else {"status": status, "latencyMs": latency}
            record = client.patch(f"/api/comparisons/{cid}", json=body).json()
            assert record["latencyMs"] == latency and record["status"] == status
        stats = client.get("/api/dashboard/stats").json()  # a write makes the next stats fresh at once
    live, meta = stats["liveStats"], stats["meta"]
    assert live["responseTime"] == pytest.approx(200.0)  # mean of the reported latencyMs
    assert live["errorRate"] == pytest.approx(100.0 / 3, abs=1e-3)  # 1 failed of 3 completed or failed
    assert "responseTime" not in meta["unavailable"] and "errorRate" not in meta["unavailable"]
    assert meta["activity"] == {"finished": 4, "withLatency": 3} and meta["windows"]["activityS"] == 3600


# -- comparisons ----------------------------------------------------------------------------------------
def test_comparison_flow(client):
    created = client.post("/api/comparisons", json={"models": ["alpha", "beta"], "name": "first",
                                                    "metadata": {"suite": "mmlu"}})
    assert created.status_code == 201
    record = created.json()
    assert list(record) == ["id", "name", "models", "status", "createdAt", "startedAt", "finishedAt", "accuracy",
                            "speed", "latencyMs", "error", "metadata", "energyKwh", "carbonKg"]
    assert record["status"] == "queued" and record["startedAt"] is None and record["metadata"] == {"suite": "mmlu"}
    cid = record["id"]
    assert client.get(f"/api/comparisons/{cid}").json() == record
    stats = fresh_stats(client)
    assert stats["liveStats"]["queueLength"] >= 1

    running = client.patch(f"/api/comparisons/{cid}", json={"status": "running"}).json()
    assert running["status"] == "running" and running["startedAt"] is not None
    assert fresh_stats(client)["liveStats"]["activeComparisons"] >= 1
    time.sleep(1.5)
    done = client.patch(f"/api/comparisons/{cid}", json={"status": "completed", "accuracy": 91.5, "speed": 12,
                                                         "latencyMs": 245.5})
    assert done.status_code == 200
    done = done.json()
    assert done["status"] == "completed" and done["accuracy"] == 91.5 and done["speed"] == 12
    assert done["latencyMs"] == 245.5
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
    ({"status": "completed", "latencyMs": -1}, 400, "latencyMs"),
    ({"status": "completed", "latencyMs": "fast"}, 400, "latencyMs"),
    ({"status": "completed", "latencyMs": True}, 400, "latencyMs"),
    ({"status": "completed", "latencyMs": 1e300}, 400, "latencyMs"),
    ({"status": "running", "latencyMs": 12}, 400, "latencyMs"),
    ({"status": "completed", "accuracy": 10 ** 400}, 400, "accuracy"),
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
    assert nan.status_code == 400 and error_of(nan)["field"] == "metadata"
    record = client.post("/api/comparisons", json={"models": ["a"], "status": "running"}).json()
    for constant in (b"NaN", b"Infinity", b"-Infinity"):
        bad = client.patch(f"/api/comparisons/{record['id']}", headers=headers,
                           content=b'{"status": "completed", "latencyMs": ' + constant + b"}")
        assert bad.status_code == 400 and error_of(bad)["field"] == "latencyMs", constant
    assert client.get(f"/api/comparisons/{record['id']}").json() == record
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


def test_first_answer_after_start_is_a_200(server_factory):
    """Polled from the moment of exec, the service answers nothing before its stats exist, then 200."""
    server = server_factory(start=False)
    server.start(wait=False)
    statuses = []
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=10) as http:
        while time.monotonic() < deadline and not statuses:
            try:
                statuses.append(http.get(server.url + "/api/dashboard/stats").status_code)
            except httpx.TransportError:
                time.sleep(0.005)
        statuses += [http.get(server.url + "/api/dashboard/stats").status_code for _ in range(3)]
    assert statuses == [200] * 4


def test_stats_are_built_only_when_asked(server_factory):
    server = server_factory()
    with server.client() as client:
        client.get("/api/dashboard/stats")
        before = client.get("/healthz").json()["stats"]["builds"]
        time.sleep(2.5)  # nobody polls: no build, however many update intervals pass
        assert client.get("/healthz").json()["stats"]["builds"] == before
        for _ in range(5):
            client.get("/api/dashboard/stats")  # within one update interval: one build serves them all
        assert client.get("/healthz").json()["stats"]["builds"] == before + 1


def test_kill_9_loses_at_most_the_last_flush(server_factory, tmp_path):
    db = tmp_path / "crash.duckdb"
    server = server_factory(db=db)
    with server.client() as client:
        created = client.post("/api/comparisons", json={"models": ["a"]}).json()
        offset = client.post("/api/offsets", json={"kg": 0.5}).json()
    time.sleep(6.5)  # past the first 5 s flush
    killed_at = time.time() * 1000
    server.process.kill()
    server.process.wait()
    again = server_factory(db=db)
    with again.client() as client:
        assert client.get(f"/api/comparisons/{created['id']}").json() == created  # committed before the 201
        assert client.get("/api/offsets").json()["items"] == [offset]
    import duckdb

    again.stop()
    con = duckdb.connect(str(db), read_only=True)
    last = con.execute("SELECT max(ts_ms) FROM samples WHERE ts_ms < ?", [killed_at]).fetchone()[0]
    con.close()
    assert killed_at - last < 5000 + 500  # flush every 5 s: at most the last flush (and a tick) is lost
