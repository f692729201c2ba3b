"""Faults injected into a running service: a full disk with a checkpoint due, and wall-clock steps under
libfaketime."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from support.disks import fill_up, small_tmpfs
from support.server import ServerProcess


def wait_for(condition, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"not true within {timeout} s")


def test_a_full_disk_with_a_checkpoint_due_answers_503_and_recovers_by_itself(tmp_path):
    """The disk fills; the checkpoint that falls due fails and DuckDB invalidates the database. Writes answer 503
    with Retry-After, /healthz says why, and once space returns the service reopens the file in process and
    writes the samples it held meanwhile: none is lost, no outage is recorded."""
    with small_tmpfs(tmp_path / "disk", "24m") as disk:
        db = disk / "tsstats.duckdb"
        server = ServerProcess(db, "--checkpoint-interval", "10", "--flush-interval", "20", "--sample-hz", "10")
        with server, server.client() as client:
            started = time.time()
            assert client.post("/api/comparisons", json={"models": ["a", "b"]}).status_code == 201
            filler = fill_up(disk)
            # no write until the checkpoint falls due (10 s), so that it is the checkpoint that fails
            health = wait_for(lambda: (answer := client.get("/healthz")).status_code == 503 and answer, timeout=20)
            problem = " ".join(health.json()["problems"])
            assert "cannot be written" in problem and "held in memory" in problem, problem
            response = client.post("/api/comparisons", json={"models": ["c", "d"]})
            assert response.status_code == 503
            assert 1 <= int(response.headers["Retry-After"]) <= 60
            message = response.json()["error"]["message"]
            assert str(disk) in message and "nothing was written" in message, message
            assert client.get("/api/dashboard/stats").status_code == 200  # the stats keep coming from memory

            filler.unlink()
            created = wait_for(lambda: client.post("/api/comparisons", json={"models": ["e", "f"]}).status_code == 201,
                               timeout=15)
            assert created
            wait_for(lambda: client.get("/healthz").status_code == 200, timeout=30)  # the next flush writes
            body = client.get("/healthz").json()
            assert body["database"]["writable"] and body["samplesLost"] == 0
            stopped_at = time.time()
        assert server.process.returncode == 0, server.output
        assert "reopened the database" in server.output, server.output[-3000:]
        assert "Traceback" not in server.output, server.output[-3000:]
        con = duckdb.connect(str(db), read_only=True)
        samples, first, last = con.execute("SELECT count(*), min(ts_ms), max(ts_ms) FROM samples").fetchone()
        models = [row[0] for row in con.execute("SELECT models FROM comparisons ORDER BY id").fetchall()]
        outages = con.execute("SELECT count(*) FROM outages").fetchone()[0]
        con.close()
        expected = (stopped_at - started) * 10
        assert samples >= 0.95 * expected, (samples, expected)
        assert (last - first) / 1000.0 >= stopped_at - started - 2.0
        assert outages == 0
        assert models == [["a", "b"], ["e", "f"]]  # the refused one was not written


LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))), Path("/nonexistent"))
FAKETIME_SHIM = Path(__file__).parents[1] / "support" / "faketime_shim"


def faketime_env(offset_file: Path) -> dict[str, str]:
    """The wall clock of a process under libfaketime, offset by what ``offset_file`` says ("+3600", "+0"),
    re-read every second; the monotonic clocks stay true."""
    if not LIBFAKETIME.exists():
        pytest.skip("Debian's faketime is not installed (the test command installs it)")
    offset_file.write_text("+0\n")
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def test_wall_clock_steps_under_libfaketime(tmp_path):
    """The wall clock steps an hour ahead, a comparison starts, the clock steps back, the comparison ends. The
    forward step is no outage; after the step back, timestamps follow the wall clock again within a second, rows
    stay in order with no duplicate, and the comparison's duration is the monotonic time it ran, with energy."""
    offset = tmp_path / "offset"
    server = ServerProcess(tmp_path / "clock.duckdb", "--flush-interval", "1", env=faketime_env(offset))
    server.env["PYTHONPATH"] = os.pathsep.join([str(FAKETIME_SHIM), server.env["PYTHONPATH"]])
    with server, server.client() as client:
        created = client.post("/api/comparisons", json={"models": ["a", "b"]}).json()
        time.sleep(2.0)
        offset.write_text("+3600\n")
        time.sleep(2.5)
        assert client.patch(f"/api/comparisons/{created['id']}", json={"status": "running"}).status_code == 200
        ran_from = time.monotonic()  # started while the clock was an hour ahead
        time.sleep(2.0)
        offset.write_text("+0\n")
        time.sleep(3.0)
        finished = client.patch(f"/api/comparisons/{created['id']}",
                                json={"status": "completed", "accuracy": 90, "speed": 30}).json()
        ran_s = time.monotonic() - ran_from
        time.sleep(1.5)
        stats = client.get("/api/dashboard/stats").json()
        recent = client.get("/api/history", params={"from": "-3s", "metrics": "cpuUsage", "points": "3"}).json()
        stopped_at = time.time()
    assert server.process.returncode == 0, server.output[-3000:]
    assert "stepped back" in server.output, server.output[-3000:]
    assert stats["liveStats"]["uptime"] == 100.0  # the forward step was no outage
    assert any(value is not None for value in recent["series"]["cpuUsage"]["avg"])  # samples at the true time
    started = datetime.fromisoformat(finished["startedAt"].replace("Z", "+00:00")).timestamp()
    ended = datetime.fromisoformat(finished["finishedAt"].replace("Z", "+00:00")).timestamp()
    assert ended - started == pytest.approx(ran_s, abs=0.5), (finished, ran_s)
    assert finished["energyKwh"] > 0
    con = duckdb.connect(str(tmp_path / "clock.duckdb"), read_only=True)
    times = con.execute("SELECT list(ts_ms ORDER BY rowid) FROM samples").fetchall()[0][0]
    outages = con.execute("SELECT count(*) FROM outages").fetchall()[0][0]
    con.close()
    assert times == sorted(times) and len(set(times)) == len(times)
    assert abs(times[-1] / 1000.0 - stopped_at) < 1.5  # the newest row is at the true time
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 1500  # no hour left anywhere
    assert outages == 0
