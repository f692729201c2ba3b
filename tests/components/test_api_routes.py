"""The HTTP API in process: the real app over a real service (DuckDB file, sampler thread) on fake hardware,
called through sanic-testing's ASGI client: the contract field by field, comparisons, offsets, energy, and
every kind of bad input."""

from __future__ import annotations

import json
import math
import time

import pytest
from support.answers import error_of
from support.nvml import FakeGpu
from support.powercap import FakePowercap


@pytest.fixture(scope="module")
def client(api):
    return api


def fresh_stats(client) -> dict:
    response = client.get("/api/dashboard/stats")
    assert response.status_code == 200
    return response.json()



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
        "enterpriseMetrics": ["modelAccuracy", "processingSpeed", "systemUptime", "successRate", "responseTime",
                              "queueLength", "concurrentComparisons", "dataThroughput"],
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



def test_response_time_and_error_rate_describe_the_comparisons(inprocess):
    client = inprocess().client()
    if True:
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
    assert live["errorRate"] == pytest.approx(100.0 / 3, abs=0.005)  # 1 failed of 3 completed or failed
    assert "responseTime" not in meta["unavailable"] and "errorRate" not in meta["unavailable"]
    assert meta["activity"] == {"finished": 4, "withLatency": 3} and meta["windows"]["activityS"] == 3600



def test_comparison_flow(client):
    created = client.post("/api/comparisons", json={"models": ["alpha", "beta"], "name": "first",
                                                    "metadata": {"suite": "mmlu"}})
    assert created.status_code == 201
    record = created.json()
    assert list(record) == ["id", "name", "models", "status", "createdAt", "startedAt", "finishedAt", "accuracy",
                            "speed", "latencyMs", "error", "metadata", "energyKwh", "carbonKg", "pids", "attribution",
                            "gpuShare", "machineEnergyJ", "energyByComponentJ", "machineEnergyKwh",
                            "energyByComponentKwh", "durationS", "energyJ", "carbonG",
                            "items", "energyPerItemJ", "carbonPerItemG", "embodiedG", "sci", "sciIncludes",
                            "unavailable", "methods", "estimated", "grid", "measurer", "conditions", "fair",
                            "unfairReasons", "endedBy", "processesExitedAt", "phases"]
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
    # each at its unit's precision (1 mJ, 1 ug; the deprecated kWh and kg fields 0.36 mJ and 1 ug)
    assert done["energyJ"] > 0 and done["carbonG"] == pytest.approx(done["energyJ"] / 3.6e6 * 473, abs=1e-6)
    assert done["energyKwh"] == pytest.approx(done["energyJ"] / 3.6e6, abs=1e-9)
    assert done["carbonKg"] == pytest.approx(done["carbonG"] / 1000, abs=1e-9)
    assert done["durationS"] == pytest.approx(1.5, abs=0.5)
    assert done["methods"] == {"cpu": "tdp_model", "gpu": "absent", "memory": "dimm_model"}
    assert done["estimated"] == ["cpu", "memory"]
    assert done["grid"] == {"gPerKwh": 473.0, "region": "WORLD", "source": "yearly average"}
    assert done["items"] is None and done["sci"] is None and done["unavailable"] == ["embodied", "items"]

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



BAD_BODIES = [
    ({"models": "alpha"}, 400, "models"),
    ({"models": ["a"], "items": 0}, 400, "items"),
    ({"models": ["a"], "items": "many"}, 400, "items"),
    ({"models": ["a"], "items": 1e16}, 400, "items"),
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



def test_unknown_routes_ids_and_methods(client):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and error_of(missing)
    assert client.get("/nothing/here").status_code == 404
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



def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["lastSampleAgeS"] < 3 and body["database"]["writable"] is True
    assert body["stats"]["failedBuilds"] == 0 and body["stats"]["lastError"] is None


def test_healthz_reports_a_stats_builder_that_keeps_failing(inprocess, caplog):
    service = inprocess()
    client = service.client()
    publisher = service.service.sampler.parts.publisher
    served = client.get("/api/dashboard/stats").content

    def broken():  # as a stored value the figures cannot use would make it
        raise OverflowError("year 10000 is out of range")

    publisher.compute = broken
    for _ in range(4):
        publisher.invalidate()
        assert client.get("/api/dashboard/stats").content == served  # the last good stats, not an error
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["stats"]["failedBuilds"] == 4
    assert "building the stats has failed 4 times in a row (OverflowError: year 10000" in health.json()["problems"][0]
    assert caplog.text.count("building the stats failed") == 1  # once, not on every poll



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



# -- fake hardware through HTTP -----------------------------------------------------------------------------
def test_stats_and_metrics_with_two_gpus(inprocess):
    gpus = [FakeGpu(name="Fake A", util=80, power_mw=200_000, energy_mj=1000),
            FakeGpu(name="Fake B", util=40, power_mw=100_000, energy_mj=1000)]
    service = inprocess(gpus=gpus)
    client = service.client()
    for gpu in gpus:
        gpu.energy_mj += 50_000  # the counters move on
    time.sleep(1.1)
    stats = client.get("/api/dashboard/stats").json()
    meta = stats["meta"]
    assert stats["systemMetrics"]["gpuUsage"] == pytest.approx(60.0)
    assert meta["sources"]["gpu"] == "nvml" and meta["sources"]["gpuPower"] == "nvml_energy"
    assert [(g["index"], g["name"], g["utilization"], g["powerW"]) for g in meta["gpus"]] == [
        (0, "Fake A", 80.0, 200.0), (1, "Fake B", 40.0, 100.0)]
    assert "gpuUsage" not in meta["unavailable"]
    text = client.get("/metrics").text
    assert 'tsstats_gpu_utilization_ratio{gpu="0",name="Fake A"} 0.8' in text
    assert 'tsstats_gpu_power_watts{gpu="1",name="Fake B"} 100.0' in text
    assert "tsstats_gpu_usage_ratio 0.6" in text
    assert 'tsstats_energy_joules_total{component="gpu"}' in text and 'tsstats_power_watts{component="gpu"}' in text
    assert 'tsstats_energy_method_info{component="gpu",estimated="false",method="nvml_energy"} 1.0' in text


def test_energy_route_with_rapl_counters(inprocess, tmp_path):
    tree = FakePowercap(tmp_path / "powercap", packages=1)
    service = inprocess(powercap=tmp_path / "powercap")
    client = service.client()
    for step in range(1, 11):  # 30 W of package and 3 W of dram, counted as the seconds pass
        time.sleep(0.1)
        tree.set("intel-rapl:0", step * 3_000_000)
        tree.set("intel-rapl:0:2", step * 300_000)
    time.sleep(0.2)
    body = client.get("/api/energy", params={"from": "-1h"}).json()
    assert body["methods"] == {"cpu": "rapl", "gpu": "absent", "memory": "rapl_dram"}
    assert body["energyKwh"]["cpu"] == pytest.approx(30.0 / 3.6e6, rel=0.05)
    assert body["energyKwh"]["memory"] == pytest.approx(3.0 / 3.6e6, rel=0.05)
    stats = client.get("/api/dashboard/stats").json()
    assert stats["meta"]["sources"]["cpuPower"] == "rapl" and stats["meta"]["estimated"] == []


def test_token_guards_every_route_but_healthz(inprocess):
    service = inprocess(token="s3cret")
    bare = service.client()
    for path in ("/api/dashboard/stats", "/api/comparisons", "/metrics", "/api/energy", "/api/metrics",
                 "/api/history?metrics=cpuUsage", "/api/offsets"):
        response = bare.get(path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
        error_of(response)
    assert bare.get("/api/dashboard/stats", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert bare.post("/api/comparisons", json={"models": ["a"]}).status_code == 401
    assert bare.delete("/api/comparisons/1").status_code == 401
    assert bare.post("/api/comparisons/1/phases", json={"name": "p"}).status_code == 401
    assert bare.get("/healthz").status_code == 200
    assert service.client("s3cret").get("/api/dashboard/stats").status_code == 200
    # a browser's preflight carries no token and must still pass
    preflight = bare.options("/api/dashboard/stats", headers={"Origin": "http://localhost:3000",
                                                              "Access-Control-Request-Method": "GET"})
    assert preflight.status_code == 204
    assert service.client("s3cret").get("/api/comparisons").json()["items"] == []  # the refused POST wrote nothing


# -- hostile input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path, params, field", [
    ("/api/comparisons", {"limit": "\u00b2"}, "limit"),
    ("/api/comparisons", {"before": "\u00b2"}, "before"),
    ("/api/history", {"metrics": "cpuUsage", "points": "\u00b2"}, "points"),
    ("/api/history", {"metrics": "cpuUsage", "from": "-99999999999999999999d"}, "from"),
    ("/api/energy", {"from": "-99999999999999999999d"}, "from"),
    ("/api/history", {"metrics": "cpuUsage", "step": "\u0663s"}, "step"),
])
def test_hostile_parameters_are_400s(client, path, params, field):
    response = client.get(path, params=params)
    assert response.status_code == 400, response.text
    assert error_of(response)["field"] == field


@pytest.mark.parametrize("path, body, field", [
    ("/api/comparisons", '{"models": ["\\ud800"]}', "models"),
    ("/api/comparisons", '{"models": ["a"], "metadata": {"\\ud800": 1}}', "metadata"),
    ("/api/comparisons", '{"models": ["a"], "name": "\\udfff"}', "name"),
    ("/api/offsets", '{"kg": 1' + "0" * 400 + "}", "kg"),
    ("/api/offsets", '{"kg": 1, "at": "-99999999999999999999d"}', "at"),
])
def test_hostile_bodies_are_400s(client, path, body, field):
    before = client.get(path).json()
    response = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert error_of(response)["field"] == field
    assert client.get(path).json() == before


def test_huge_numbers_in_an_update_are_400s(client):
    record = client.post("/api/comparisons", json={"models": ["a"], "status": "running"}).json()
    for name in ("accuracy", "speed", "latencyMs"):
        response = client.patch(f"/api/comparisons/{record['id']}", headers={"content-type": "application/json"},
                                content=f'{{"status": "completed", "{name}": 9{"9" * 400}}}'.encode())
        assert response.status_code == 400 and error_of(response)["field"] == name
    assert client.get(f"/api/comparisons/{record['id']}").json() == record


# -- the page -----------------------------------------------------------------------------------------------
def test_the_page_and_its_assets_have_etags(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/assets/app.js" in page.text and "/assets/uPlot.iife.min.js" in page.text
    for path in ["/", "/assets/app.js", "/assets/app.css", "/assets/uPlot.iife.min.js", "/assets/uPlot.min.css"]:
        first = client.get(path)
        assert first.status_code == 200 and first.headers["etag"] and first.headers["vary"] == "Accept-Encoding"
        again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    assert client.get("/assets/nothing.js").status_code == 404
    assert client.get("/assets/index.html").status_code == 404


def test_the_page_needs_no_token_but_its_data_does(inprocess):
    bare = inprocess(token="s3cret").client()
    assert bare.get("/").status_code == 200 and bare.get("/assets/app.js").status_code == 200
    assert bare.get("/api/check").status_code == 401


def test_check_gives_reasons(client):
    check = client.get("/api/check").json()
    assert "NVML" in check["reasons"]["gpuUsage"] and check["system"] == "procfs"
    assert check["methods"] == {"cpu": "tdp_model", "gpu": "absent", "memory": "dimm_model"}


def test_serving_the_page_costs_the_sampler_nothing(client):
    builds = client.get("/healthz").json()["stats"]["builds"]
    for path in ("/", "/assets/app.js", "/assets/app.css", "/assets/uPlot.iife.min.js", "/assets/uPlot.min.css"):
        assert client.get(path).status_code == 200
    assert client.get("/healthz").json()["stats"]["builds"] == builds  # served from memory: no stats built


@pytest.mark.parametrize("method, path, body", [
    ("post", "/api/comparisons?dry=1", {"models": ["a"]}),
    ("post", "/api/offsets?dry=1", {"kg": 1}),
])
def test_writes_refuse_query_parameters(client, method, path, body):
    before = client.get(path.split("?")[0]).json()
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 400 and error_of(response)["field"] == "dry"
    assert client.get(path.split("?")[0]).json() == before


def test_a_run_with_items_gets_per_item_figures_and_an_operational_sci(client):
    record = client.post("/api/comparisons", json={"name": "no model", "status": "running", "items": 400}).json()
    assert record["models"] == [] and record["items"] == 400
    time.sleep(0.3)
    done = client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed", "items": 500}).json()
    assert done["items"] == 500  # the end's count wins
    assert done["energyPerItemJ"] == pytest.approx(done["energyJ"] / 500)
    assert done["carbonPerItemG"] == pytest.approx(done["carbonG"] / 500)
    assert done["sci"] == pytest.approx(done["carbonG"] / 500)  # no embodied_kg: operational only, and said so
    assert done["sciIncludes"] == ["operational"] and done["unavailable"] == ["embodied"]
    stats = fresh_stats(client)["comparisonStats"]
    assert stats["totalComparisons"] >= 1


def test_embodied_carbon_is_amortised_into_sci(inprocess):
    client = inprocess(embodied_kg="300", lifetime_years="4").client()
    record = client.post("/api/comparisons", json={"models": ["m"], "status": "running", "items": 10}).json()
    time.sleep(0.5)
    done = client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed"}).json()
    share = 1.0  # alone on the machine, shared with nobody
    expected_m = 300 * 1000 * done["durationS"] / (4 * 365.25 * 86400) * share
    assert done["embodiedG"] == pytest.approx(expected_m, rel=1e-6)
    assert done["sci"] == pytest.approx((done["carbonG"] + expected_m) / 10)
    assert done["sciIncludes"] == ["operational", "embodied"] and done["unavailable"] == []


def test_phases_nest_and_get_their_own_figures(client):
    cid = client.post("/api/comparisons", json={"models": ["p"], "status": "running"}).json()["id"]
    outer = client.post(f"/api/comparisons/{cid}/phases", json={"name": "warm-up"})
    assert outer.status_code == 201, outer.text
    inner = client.post(f"/api/comparisons/{cid}/phases", json={"name": "load", "parent": outer.json()["id"]})
    assert inner.status_code == 201 and inner.json()["parent"] == outer.json()["id"]
    time.sleep(0.2)
    closed = client.patch(f"/api/comparisons/{cid}/phases/{outer.json()['id']}", json={"status": "completed"})
    assert closed.status_code == 200 and closed.json()["energyJ"] > 0 and closed.json()["durationS"] > 0
    again = client.patch(f"/api/comparisons/{cid}/phases/{inner.json()['id']}", json={"status": "completed"})
    assert again.status_code == 409  # closed with its parent
    late = client.post(f"/api/comparisons/{cid}/phases", json={"name": "eval"}).json()
    done = client.patch(f"/api/comparisons/{cid}", json={"status": "completed"}).json()
    phases = {phase["name"]: phase for phase in done["phases"]}
    assert list(phases) == ["warm-up", "load", "eval"] and phases["eval"]["status"] == "completed"
    assert phases["eval"]["id"] == late["id"] and all(phase["finishedAt"] for phase in done["phases"])
    assert phases["load"]["energyJ"] <= phases["warm-up"]["energyJ"]
    for phase in done["phases"]:  # each closed phase is judged as a run is, over its own window
        assert phase["fair"] in (True, False) and phase["conditions"]["limits"] == {"contentionPct": 10.0}
        assert phase["fair"] == (phase["unfairReasons"] == [])
        assert "contentionPct" in phase["conditions"]["unavailable"]  # no pids named
    assert inner.json()["fair"] is None and inner.json()["conditions"] is None  # running: not judged yet
    for body, status, field in (({"name": ""}, 400, "name"), ({"name": "x", "parent": 10 ** 9}, 400, "parent"),
                                ({"name": "x", "colour": 1}, 400, "colour")):
        answer = client.post(f"/api/comparisons/{cid}/phases", json=body)
        assert answer.status_code in (status, 409) and error_of(answer).get("field") in (field, "status")
    finished = client.post(f"/api/comparisons/{cid}/phases", json={"name": "after"})
    assert finished.status_code == 409  # a finished comparison opens no phase
    assert client.post("/api/comparisons/999999999/phases", json={"name": "x"}).status_code == 404


def test_a_record_can_be_deleted(client):
    cid = client.post("/api/comparisons", json={"models": ["gone"], "status": "running"}).json()["id"]
    assert client.delete(f"/api/comparisons/{cid}").status_code == 204
    assert client.get(f"/api/comparisons/{cid}").status_code == 404
    assert client.delete(f"/api/comparisons/{cid}").status_code == 404
    assert client.delete("/api/comparisons/not-a-number").status_code == 404


def test_enterprise_metrics_come_from_the_comparisons_of_the_window(inprocess):
    client = inprocess().client()
    meta = fresh_stats(client)["meta"]
    assert "enterpriseMetrics.modelAccuracy" in meta["unavailable"]  # nothing finished yet: 0, and said so
    for accuracy, speed, items in ((80.0, 10.0, 100), (90.0, 30.0, 300)):
        cid = client.post("/api/comparisons", json={"models": ["e"], "status": "running"}).json()["id"]
        time.sleep(0.2)
        client.patch(f"/api/comparisons/{cid}", json={"status": "completed", "accuracy": accuracy, "speed": speed,
                                                       "items": items, "latencyMs": 20.0})
    failed = client.post("/api/comparisons", json={"models": ["e"], "status": "running"}).json()["id"]
    client.patch(f"/api/comparisons/{failed}", json={"status": "failed", "error": "x"})
    stats = fresh_stats(client)
    enterprise = stats["enterpriseMetrics"]
    assert enterprise["modelAccuracy"] == 85.0 and enterprise["processingSpeed"] == 20.0
    assert enterprise["successRate"] == pytest.approx(100 * 2 / 3, abs=0.005)
    assert enterprise["responseTime"] == 20.0 and enterprise["queueLength"] == 0
    assert enterprise["systemUptime"] == stats["liveStats"]["uptime"]
    records = client.get("/api/comparisons", params={"status": "completed"}).json()["items"]
    seconds = sum(record["durationS"] for record in records)
    assert enterprise["dataThroughput"] == pytest.approx(400 / seconds, rel=0.02)
    assert stats["meta"]["units"]["enterpriseMetrics"]["dataThroughput"] == "items/s"
    assert not [name for name in stats["meta"]["unavailable"] if name.startswith("enterpriseMetrics")]


def test_the_models_table_and_the_per_model_counters(inprocess):
    client = inprocess().client()
    for models, accuracy, items, status in ((["vit", "resnet"], 80.0, 100, "completed"),
                                            (["vit"], 90.0, 300, "completed"), (["vit"], None, None, "failed")):
        cid = client.post("/api/comparisons", json={"models": models, "status": "running"}).json()["id"]
        time.sleep(0.1)
        body = {"status": status, **({"accuracy": accuracy, "items": items} if accuracy else {})}
        assert client.patch(f"/api/comparisons/{cid}", json=body).status_code == 200
    table = client.get("/api/models", params={"from": "-1h"}).json()
    assert table["units"]["energyPerItemJ"] == "J" and [row["model"] for row in table["items"]] == ["resnet", "vit"]
    vit = table["items"][1]
    assert vit["runs"]["total"] == 3 and vit["runs"]["completed"] == 2 and vit["runs"]["failed"] == 1
    assert vit["accuracy"] == 85.0
    records = [r for r in client.get("/api/comparisons").json()["items"] if "vit" in r["models"] and r["items"]]
    assert vit["energyPerItemJ"] == pytest.approx(sum(r["energyJ"] for r in records) / 400)
    assert vit["sciPerItemG"] == pytest.approx(sum(r["carbonG"] for r in records) / 400)
    assert client.get("/api/models", params={"from": "+1d"}).status_code == 400
    fair = client.get("/api/models", params={"from": "-1h", "fair": "true"}).json()
    judged = [r for r in client.get("/api/comparisons").json()["items"] if "vit" in r["models"]]
    assert all(r["fair"] in (True, False) for r in judged)  # every ended run is judged
    assert fair["fairOnly"] is True and sum(row["runs"]["total"] for row in fair["items"] if row["model"] == "vit") \
        == sum(1 for r in judged if r["fair"] is not False)
    unfair_only = client.get("/api/comparisons", params={"fair": "false"}).json()["items"]
    assert [r["id"] for r in unfair_only] == [r["id"] for r in client.get("/api/comparisons").json()["items"]
                                             if r["fair"] is False]
    assert client.get("/api/models", params={"fair": "maybe"}).json()["error"]["field"] == "fair"
    metrics = client.get("/metrics").text
    assert 'tsstats_model_runs{model="vit",status="completed"} 2.0' in metrics
    assert 'tsstats_model_runs{model="vit",status="failed"} 1.0' in metrics
    assert 'tsstats_model_runs_finished_total{model="vit"} 3.0' in metrics
    assert "tsstats_model_series_omitted 0.0" in metrics
    energy_line = next(line for line in metrics.splitlines()
                       if line.startswith('tsstats_model_energy_joules_total{model="vit"}'))
    assert float(energy_line.split()[-1]) == pytest.approx(sum(r["energyJ"] for r in client.get(
        "/api/comparisons").json()["items"] if "vit" in r["models"]), rel=1e-6)


def test_records_count_against_max_db_mb_and_lists_are_paged(inprocess, tmp_path):
    """At the records' share of the cap (half of max_db_mb), a new record is a 507 that names the figures and
    writes nothing; the records already in the file count from the start; a page of comparisons with 16 KiB
    of metadata each stays within 1 MiB, and every record is reached through the pages."""
    from tsstats.storage.store import Store

    metadata = json.dumps({"notes": "x" * 16_000})
    db = tmp_path / "records.duckdb"
    store = Store(str(db))  # 470 comparisons of 16 KiB: most of the 8 MB the records may take
    store.transaction(lambda con: con.execute(
        "INSERT INTO comparisons (name, models, status, created_ms, metadata) "
        "SELECT 'old', ['m'], 'queued', 1767225600000 + range, ? FROM range(470)", [metadata]))
    store.close()
    client = inprocess(db=str(db), max_db_mb="16").client()
    created = 0
    for _ in range(100):
        response = client.post("/api/comparisons", json={"models": ["m"], "metadata": json.loads(metadata)})
        if response.status_code == 507:
            break
        assert response.status_code == 201, response.text
        created += 1
    assert created < 100
    refused = error_of(response)
    assert "the records (comparisons, phases, offsets, grid rows) take about" in refused["message"]
    assert "max_db_mb (16 MB)" in refused["message"]
    listed = client.get("/api/comparisons", params={"limit": 500})
    assert len(listed.content) <= 1024 * 1024 and listed.json()["next"] is not None
    assert 50 < len(listed.json()["items"]) < 100
    seen = {item["id"] for item in listed.json()["items"]}
    cursor = listed.json()["next"]
    while cursor:
        page = client.get("/api/comparisons", params={"limit": 500, "before": cursor}).json()
        seen |= {item["id"] for item in page["items"]}
        cursor = page["next"]
    assert len(seen) == 470 + created  # nothing refused was stored


def test_offsets_are_paged_newest_first_with_the_total_of_all(client):
    before = client.get("/api/offsets").json()["totalKg"]
    made = [client.post("/api/offsets", json={"kg": 0.5, "note": f"n{i}"}).json()["id"] for i in range(5)]
    first = client.get("/api/offsets", params={"limit": 2}).json()
    assert [item["id"] for item in first["items"]] == made[:-3:-1] and first["next"] == str(made[-2])
    assert first["totalKg"] == pytest.approx(before + 2.5)
    second = client.get("/api/offsets", params={"limit": 2, "before": first["next"]}).json()
    assert [item["id"] for item in second["items"]] == [made[2], made[1]]
    assert error_of(client.get("/api/offsets", params={"limit": 0}))["field"] == "limit"


def significant_digits(value: float) -> int:
    mantissa = repr(abs(value)).split("e")[0].replace(".", "").strip("0")
    return len(mantissa)


def floats_in(value, path: str = ""):
    if isinstance(value, float):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from floats_in(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from floats_in(item, f"{path}[{index}]")


def test_figures_carry_no_float_noise_and_joules_and_grams_agree_with_the_deprecated_fields(client):
    created = client.post("/api/comparisons", json={"models": ["noise"], "status": "running", "items": 7}).json()
    time.sleep(0.7)
    done = client.patch(f"/api/comparisons/{created['id']}", json={"status": "completed", "accuracy": 90.1}).json()
    client.post("/api/offsets", json={"kg": 0.0123})
    answers = {"record": done, "energy": client.get("/api/energy").json(),
               "models": client.get("/api/models").json(), "offsets": client.get("/api/offsets").json()}
    noisy = [(name + path, value) for name, answer in answers.items() for path, value in floats_in(answer)
             if significant_digits(value) > 7]
    assert noisy == []
    assert done["energyJ"] > 0 and done["carbonG"] > 0
    assert done["energyKwh"] == pytest.approx(done["energyJ"] / 3.6e6, rel=1e-6)
    assert done["carbonKg"] == pytest.approx(done["carbonG"] / 1000, rel=1e-6)
    energy = answers["energy"]
    for part in ("cpu", "gpu", "memory", "total"):
        assert energy["energyJ"][part] == pytest.approx(energy["energyKwh"][part] * 3.6e6, rel=1e-6)
    assert energy["carbonG"] == pytest.approx(energy["carbonKg"] * 1000, rel=1e-6)
    offsets = answers["offsets"]
    assert offsets["totalG"] == pytest.approx(offsets["totalKg"] * 1000) and offsets["items"][0]["carbonG"] == 12.3


def test_metrics_leave_out_what_is_not_measured_and_name_each_method(client):
    text = client.get("/metrics").text
    series = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any('component="gpu"' in line for line in series)  # no GPU here: no gpu series, not a 0
    powers = {line.split('"')[1]: float(line.split()[-1]) for line in series if line.startswith("tsstats_power_watts")}
    assert set(powers) == {"cpu", "memory", "total"}
    assert powers["total"] == pytest.approx(powers["cpu"] + powers["memory"]) and powers["memory"] > 0
    assert 'tsstats_energy_method_info{component="cpu",estimated="true",method="tdp_model"} 1.0' in series
    assert 'tsstats_energy_method_info{component="memory",estimated="true",method="dimm_model"} 1.0' in series


def test_metrics_keep_the_most_recently_active_models_and_their_counters_never_go_down(inprocess, monkeypatch):
    from tsstats.comparisons import models as models_module

    client = inprocess(metrics_max_models="5").client()
    ids = {}
    for number in range(12):
        record = client.post("/api/comparisons", json={"models": [f"m{number:02d}"], "status": "running",
                                                       "items": 10 + number}).json()
        ids[number] = record["id"]
        assert client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed"}).status_code == 200
    ended = {record["models"][0]: record for record in client.get("/api/comparisons").json()["items"]}

    def series(text: str, name: str) -> dict[str, float]:
        found = {}
        for line in text.splitlines():
            if line.startswith(name + "{"):
                labels, value = line.rsplit(" ", 1)
                found[labels[labels.index('model="') + 7:].split('"')[0]] = float(value)
        return found

    metrics = client.get("/metrics").text
    assert sorted(series(metrics, "tsstats_model_runs_finished_total")) == ["m07", "m08", "m09", "m10", "m11"]
    assert "tsstats_model_series_omitted 7.0" in metrics
    energy = series(metrics, "tsstats_model_energy_joules_total")
    assert series(metrics, "tsstats_model_items_total") == {f"m{n:02d}": 10.0 + n for n in range(7, 12)}
    carbon = series(metrics, "tsstats_model_carbon_grams_total")
    assert carbon == {model: pytest.approx(ended[model]["carbonG"], rel=1e-6) for model in carbon}
    assert energy == {model: pytest.approx(ended[model]["energyJ"], rel=1e-6) for model in energy}
    assert client.delete(f"/api/comparisons/{ids[11]}").status_code == 204
    after = client.get("/metrics").text
    assert series(after, "tsstats_model_runs_finished_total")["m11"] == 1.0  # a delete takes nothing back
    assert series(after, "tsstats_model_energy_joules_total")["m11"] == energy["m11"]
    assert 'tsstats_model_runs{model="m11",status="completed"} 0.0' in after  # the gauge says what is there now

    monkeypatch.setattr(models_module, "MAX_MODELS_LISTED", 4)
    table = client.get("/api/models").json()
    assert (len(table["items"]), table["models"], table["omitted"]) == (4, 11, 7)  # m11 was deleted


def test_models_give_the_spread_beside_each_mean_and_comparisons_filter_by_model(inprocess):
    client = inprocess().client()
    for accuracy in (80, 82, 84, 86):
        record = client.post("/api/comparisons", json={"models": ["m", "shared"], "status": "running",
                                                       "items": 10}).json()
        client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed", "accuracy": accuracy})
    client.post("/api/comparisons", json={"models": ["other"]})
    found = {item["model"]: item for item in client.get("/api/models").json()["items"]}
    spread = found["m"]["spread"]["accuracy"]
    assert (spread["n"], spread["mean"]) == (4, 83.0)
    assert spread["stdev"] == pytest.approx(2.5819889, rel=1e-6)
    half = 3.1824463 * 2.5819889 / 2  # Student's t for 3 degrees of freedom
    assert (spread["ci95Low"], spread["ci95High"]) == (pytest.approx(83 - half, rel=1e-6),
                                                       pytest.approx(83 + half, rel=1e-6))
    per_item = found["m"]["spread"]["energyPerItemJ"]
    assert per_item["n"] == 4 and per_item["ci95Low"] <= per_item["mean"] <= per_item["ci95High"]
    assert found["other"]["spread"]["accuracy"] == {"n": 0, "mean": None, "stdev": None, "ci95Low": None,
                                                    "ci95High": None}
    # the same runs: neither dominates the other, so both are on the front; one without figures is on none
    assert (found["m"]["pareto"], found["shared"]["pareto"], found["other"]["pareto"]) == (True, True, None)
    named = client.get("/api/comparisons", params={"model": "m"}).json()["items"]
    assert len(named) == 4 and all("m" in item["models"] for item in named)
    assert client.get("/api/comparisons", params={"model": "nobody"}).json()["items"] == []
    assert error_of(client.get("/api/comparisons", params={"model": "x" * 201}))["field"] == "model"
