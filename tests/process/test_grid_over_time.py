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
    assert f"grid_intensity_file {grid_file} line 3: g_per_kwh must be a decimal number" in result.stderr, result.stderr


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
    # the run is measured from the counters at its own edges, the report from the samples between them: on a
    # busy machine a late tick moves a share of a second's energy across the step
    assert done["carbonKg"] == pytest.approx(expected, rel=0.06), (done, first, second)
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


def test_no_time_outside_the_range_is_stored_and_rows_are_removed_by_time(tmp_path):
    with ServerProcess(tmp_path / "range.duckdb") as server, server.client() as client:
        for body in ({"rows": [{"time": 253402300799, "gPerKwh": 100, "renewablePct": 50}]},
                     {"rows": [{"time": "0001-01-01T00:00:00+23:59", "gPerKwh": 100, "renewablePct": 50}]},
                     {"rows": [{"time": "2099-12-31T23:59:59Z", "gPerKwh": 100, "renewablePct": 50}]}):
            refused = client.post("/api/grid", json=body)
            assert refused.status_code == 400 and error_of(refused)["field"] == "rows", refused.text
        for text in ("9999-12-31T23:59:59Z,100,50\n", "2026-01-01T00:00:00Z,1_000,50\n",
                     "2026-01-01T00:00:00Z,\u0661\u0660\u0660,50\n"):
            refused = client.post("/api/grid", content=text.encode(), headers={"Content-Type": "text/csv"})
            assert refused.status_code == 400, refused.text
        assert client.get("/api/grid").json()["overTime"] is None  # nothing of them was committed
        rows = [{"time": 1_767_225_600 + 3600 * hour, "gPerKwh": 100 + hour, "renewablePct": 10} for hour in range(5)]
        assert client.post("/api/grid", json={"rows": rows}).status_code == 200
        missing = client.delete("/api/grid", params={"from": "2026-01-01T01:00:00Z"})
        assert missing.status_code == 400 and error_of(missing)["field"] == "to"
        removed = client.delete("/api/grid", params={"from": "2026-01-01T01:00:00Z", "to": "2026-01-01T03:00:00Z"})
        assert removed.status_code == 200, removed.text
        assert removed.json()["removed"] == 2 and removed.json()["overTime"]["rows"] == 3
        assert client.get("/api/grid").json()["overTime"]["rows"] == 3


def test_a_stored_row_the_service_cannot_use_is_named_and_left_out(tmp_path):
    import duckdb

    db = tmp_path / "bad.duckdb"
    with ServerProcess(db) as server, server.client() as client:
        assert client.post("/api/grid", json={"rows": [{"time": time.time() - 60, "gPerKwh": 80,
                                                        "renewablePct": 40}]}).status_code == 200
    with duckdb.connect(str(db)) as con:  # as an older version or a hand could have written it
        con.execute("INSERT INTO grid_intensity VALUES (253402300799000, 253402304399000, 100, 50, 'feed')")
    again = ServerProcess(db)
    with again, again.client() as client:
        grid = client.get("/api/grid")
        assert grid.status_code == 200 and grid.json()["overTime"]["rows"] == 1, grid.text
        first = client.get("/api/dashboard/stats").json()["meta"]["generatedAt"]
        time.sleep(1.5)
        assert client.get("/api/dashboard/stats").json()["meta"]["generatedAt"] != first  # the stats go on
        assert client.get("/healthz").json()["status"] == "ok"
        removed = client.delete("/api/grid", params={"from": "2099-01-01T00:00:00Z", "to": "2099-12-31T23:59:59Z"})
        assert removed.status_code == 200 and removed.json()["removed"] == 0  # it starts after the range's end
    log = again.output
    assert log.count("grid_intensity row") == 1 and "from 9999-12-31T23:59:59.000Z" in log, log  # RFC 3339


def test_a_feed_holds_at_most_10000_rows_in_any_format_and_the_sampler_keeps_going(tmp_path):
    start = 1_767_225_600
    big = "".join(f"{start + 60 * i},{i % 9},1\n" for i in range(60_000)).encode()  # 900 KB
    ten_thousand = b"".join(big.splitlines(keepends=True)[:10_000])
    with ServerProcess(tmp_path / "big.duckdb") as server, server.client() as client:
        refused = client.post("/api/grid", content=big, headers={"Content-Type": "text/csv"})
        assert refused.status_code == 400 and "at most 10000 rows" in error_of(refused)["message"]
        before = client.get("/healthz").json()
        fed = client.post("/api/grid", content=ten_thousand, headers={"Content-Type": "text/csv"})
        assert fed.status_code == 200 and fed.json()["overTime"]["rows"] == 10_000, fed.text
        after = client.get("/healthz").json()
    assert before["status"] == after["status"] == "ok" and after["lastSampleAgeS"] < 3.0, (before, after)  # not stalled
