"""Faults injected into a running service: a full disk with a checkpoint due, and wall-clock steps."""

from __future__ import annotations

import time

import duckdb
from conftest import ServerProcess, fill_up, small_tmpfs


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
