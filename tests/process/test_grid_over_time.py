"""Carbon that follows the grid: rows of intensity over time from a file or a live feed, per sample."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
from support.answers import error_of
from support.server import ServerProcess, fake_hardware_env


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_a_bad_grid_file_stops_the_start_naming_the_line(tmp_path):
    grid_file = tmp_path / "grid.csv"
    grid_file.write_text("time,g_per_kwh,renewable_pct\n2026-01-01T00:00:00Z,300,20\n2026-01-01T00:30:00Z,x,1\n")
    result = subprocess.run([sys.executable, "-m", "tsstats", "serve", "--db", str(tmp_path / "g.duckdb"),
                             "--grid-intensity-file", str(grid_file), "--port", "1"],
                            capture_output=True, text=True, timeout=60, env={**fake_hardware_env(), "PATH": "/usr/bin"})
    assert result.returncode != 0
    assert f"grid_intensity_file {grid_file} line 3: g_per_kwh must be a number" in result.stderr, result.stderr


def test_a_step_change_halfway_through_a_comparison(tmp_path):
    """100 g/kWh until the middle of the run, 500 after: the comparison's carbon is each half's energy at its
    intensity; the energy report and the stats follow the same rows."""
    start = time.time()
    middle = start + 4.0
    grid_file = tmp_path / "grid.csv"
    grid_file.write_text(f"time,g_per_kwh,renewable_pct\n{iso(start - 3600)},100,10\n{iso(middle)},500,60\n")
    with ServerProcess(tmp_path / "step.duckdb", "--grid-intensity-file", str(grid_file)) as server, \
            server.client() as client:
        created = client.post("/api/comparisons", json={"models": ["m"], "status": "running"}).json()
        time.sleep(max(middle + 3.0 - time.time(), 0))
        done = client.patch(f"/api/comparisons/{created['id']}", json={"status": "completed"}).json()
        began = datetime.fromisoformat(done["startedAt"].replace("Z", "+00:00")).timestamp()
        ended = datetime.fromisoformat(done["finishedAt"].replace("Z", "+00:00")).timestamp()
        cut = int(middle * 1000)
        first = client.get("/api/energy", params={"from": f"{began:.3f}", "to": f"{middle:.3f}"}).json()
        second = client.get("/api/energy", params={"from": f"{middle:.3f}", "to": f"{ended + 0.001:.3f}"}).json()
        whole = client.get("/api/energy", params={"from": f"{began:.3f}", "to": f"{ended + 0.001:.3f}"}).json()
        stats = client.get("/api/dashboard/stats").json()
    assert cut
    expected = (first["energyKwh"]["total"] * 100 + second["energyKwh"]["total"] * 500) / 1000.0
    assert done["carbonKg"] == pytest.approx(expected, rel=0.03), (done, first, second)
    assert first["gPerKwh"] == pytest.approx(100) and second["gPerKwh"] == pytest.approx(500)
    assert 100 < whole["gPerKwh"] < 500 and whole["carbonKg"] == pytest.approx(expected, rel=0.03)
    assert 10 < whole["renewablePct"] < 60 and whole["samplesOutsideGrid"] == 0
    grid = stats["meta"]["sources"]["grid"]
    assert grid["overTime"]["source"] == "file" and grid["overTime"]["rows"] == 2
    assert 10 < stats["sustainability"]["renewableEnergyUsage"] < 60


def test_a_live_feed_of_rows(tmp_path):
    with ServerProcess(tmp_path / "feed.duckdb") as server, server.client() as client:
        assert client.get("/api/grid").json()["overTime"] is None
        assert client.get("/api/dashboard/stats").json()["meta"]["sources"]["grid"]["overTime"] is None
        now = time.time()
        fed = client.post("/api/grid", json={"rows": [{"time": iso(now - 7200), "gPerKwh": 50, "renewablePct": 90},
                                                      {"time": now - 3600, "gPerKwh": 60, "renewablePct": 80}]})
        assert fed.status_code == 200, fed.text
        assert fed.json()["overTime"]["source"] == "feed" and fed.json()["overTime"]["rows"] == 2
        csv_body = f"{iso(now - 1800)},70,70\n"
        assert client.post("/api/grid", content=csv_body, headers={"Content-Type": "text/csv"}).status_code == 200
        assert client.get("/api/grid").json()["overTime"]["rows"] == 3  # the hour from now - 1 h gave way
        time.sleep(1.5)
        energy = client.get("/api/energy", params={"from": "-1m"}).json()
        assert energy["gPerKwh"] == pytest.approx(70) and energy["renewablePct"] == pytest.approx(70)
        bad = client.post("/api/grid", json={"rows": [{"time": iso(now), "gPerKwh": 50, "renewablePct": 9},
                                                      {"time": iso(now - 60), "gPerKwh": 50, "renewablePct": 9}]})
        assert bad.status_code == 400 and "row 1" in error_of(bad)["message"]
        for body in ({"rows": []}, {"rows": [{"time": "now", "gPerKwh": 1, "renewablePct": 1}]},
                     {"rows": [{"time": iso(now), "gPerKwh": True, "renewablePct": 1}]}, {"rows": "x"}, [],
                     {"rows": [{"time": iso(now), "gPerKwh": 1, "renewablePct": 1, "extra": 1}]}):
            response = client.post("/api/grid", json=body)
            assert response.status_code == 400 and error_of(response)["field"] == "rows", (body, response.text)
        assert client.get("/api/grid").json()["overTime"]["rows"] == 3  # nothing of the bad ones stored
    again = ServerProcess(tmp_path / "feed.duckdb")
    with again, again.client() as client:
        assert client.get("/api/grid").json()["overTime"]["rows"] == 3  # kept across a restart
