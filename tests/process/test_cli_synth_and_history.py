"""History over HTTP: synthetic history from `tsstats synth`, the catalog, JSON and CSV, a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import duckdb
import pytest
from support.answers import error_of
from support.server import fake_hardware_env


@pytest.fixture(scope="module")
def synth_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("synth") / "synth.duckdb"
    result = subprocess.run([sys.executable, "-m", "tsstats", "synth", "--days", "0.25", "--hz", "10", "--db",
                             str(db), "--gpus", "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "wrote 216,000 samples" in result.stdout
    assert "100.0%" in result.stderr  # the progress bar reached the end
    return db


def test_synth_refuses_a_file_with_newer_samples(synth_db):
    result = subprocess.run([sys.executable, "-m", "tsstats", "synth", "--days", "1", "--db", str(synth_db)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "already holds samples" in result.stderr


def test_history_routes(server_factory, synth_db):
    server = server_factory(db=synth_db)
    with server.client() as client:
        catalog = client.get("/api/metrics").json()
        names = {entry["name"] for entry in catalog}
        assert {"cpuUsage", "memoryUsage", "systemLoad", "networkLatency", "activeConnections", "gpuUsage",
                "power", "energy", "gpu0Usage", "gpu1Power"} <= names
        assert all(set(entry) == {"name", "unit", "description", "kind"} for entry in catalog)

        answer = client.get("/api/history", params={"metrics": "cpuUsage,gpu1Usage", "from": "-6h", "points": 300,
                                                    "agg": "avg,max"}).json()
        assert answer["tier"] == "1m" and answer["step"] == 120_000
        assert len(answer["timestamps"]) <= 300
        assert set(answer["series"]) == {"cpuUsage", "gpu1Usage"}
        values = [v for v in answer["series"]["cpuUsage"]["avg"] if v is not None]
        assert len(values) > 150 and all(0 <= v <= 100 for v in values)
        maxima = answer["series"]["cpuUsage"]["max"]
        assert all(m is None or a is None or m >= a for a, m in zip(answer["series"]["cpuUsage"]["avg"], maxima,
                                                                      strict=True))

        hourly = client.get("/api/history", params={"metrics": "power", "from": "-6h", "step": "1h"}).json()
        assert hourly["tier"] == "1h" and all(t % 3_600_000 == 0 for t in hourly["timestamps"])

        csv = client.get("/api/history", params={"metrics": "cpuUsage", "from": "-1h", "step": "5m",
                                                 "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0] == "timestamp,cpuUsage_avg"

        bad = client.get("/api/history", params={"metrics": "cpuUsage", "points": "20000"})
        assert bad.status_code == 400 and error_of(bad)["field"] == "points"
        bad = client.get("/api/history", params={"metrics": "gpu7Usage"})
        assert bad.status_code == 400 and error_of(bad)["field"] == "metrics"
        before = client.get("/api/history", params={"metrics": "cpuUsage,energy", "from": "-5h", "to": "-1h",
                                                    "step": "10m", "agg": "avg,min,max,last"}).json()
    assert server.stop() == 0
    again = server_factory(db=synth_db)
    with again.client() as client:
        after = client.get("/api/history", params={"metrics": "cpuUsage,energy", "from": str(before["from"] / 1000),
                                                   "to": str(before["to"] / 1000), "step": "10m",
                                                   "agg": "avg,min,max,last"}).json()
    assert after["timestamps"] == before["timestamps"]
    assert after["series"] == before["series"]


def test_synth_uses_this_machines_live_power_models(synth_db):
    """Synthetic history meets the live samples without a step: the same TDP and DIMM models as the sampler."""
    check = subprocess.run([sys.executable, "-m", "tsstats", "check", "--json"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, **fake_hardware_env()})
    report = json.loads(check.stdout)
    rows = duckdb.connect(str(synth_db), read_only=True).execute(
        "SELECT mem_mj * 1.0 / interval_ms, cpu_mj * 1.0 / interval_ms, cpu_pm / 1000.0 FROM samples "
        "USING SAMPLE 200 ROWS").fetchall()
    tdp_w = report["cpu"]["tdpW"]
    for memory_w, cpu_w, utilization in rows:
        assert memory_w == pytest.approx(report["memory"]["modelW"], abs=0.01)
        assert cpu_w == pytest.approx(tdp_w * (0.1 + 0.9 * utilization ** 3), abs=0.01 + tdp_w * 0.003)
