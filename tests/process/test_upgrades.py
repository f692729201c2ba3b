"""Upgrades as a user meets them: ``tsstats serve`` on the defaults opens files of earlier versions with their
rows, and a kill -9 at any moment of an upgrade leaves a file that opens, either as it was or upgraded whole."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import old_files
from support.server import ServerProcess, fake_hardware_env, free_port

from tsstats.storage.schema import DROPPED, SCHEMA_VERSION


@pytest.mark.parametrize("version", [1, 4])
def test_serve_on_the_defaults_opens_an_earlier_file_with_its_rows(tmp_path, version):
    db = tmp_path / "old.duckdb"
    hour = 3_600_000
    start_ms = (int(time.time() * 1000) // hour - 3) * hour  # recent: retention keeps it
    old_files.build(db, version, days=0.1, comparisons=30, start_ms=start_ms)
    with ServerProcess(db) as server, server.client() as client:
        listed = client.get("/api/comparisons", params={"limit": 500}).json()["items"]
        history = client.get("/api/history", params={"metrics": "cpuUsage", "from": str(start_ms // 1000),
                                                      "to": str((start_ms + 2 * hour) // 1000), "step": "60s"})
        offsets = client.get("/api/offsets").json()
    assert server.process.returncode == 0, server.output
    assert "Traceback" not in server.output, server.output[-3000:]
    assert len(listed) == 30 and {item["status"] for item in listed} == {"completed"}
    assert history.status_code == 200, history.text
    points = [value for value in history.json()["series"]["cpuUsage"]["avg"] if value is not None]
    assert len(points) == 120, history.json()  # two hours of minutes, from the file's rollups or samples
    assert len(offsets["items"]) == 50
    assert old_files.stamped(db) == SCHEMA_VERSION


def test_a_kill_at_any_moment_of_an_upgrade_leaves_a_file_that_opens(tmp_path):
    original = tmp_path / "original.duckdb"
    old_files.build(original, 3, days=3, comparisons=2000)
    before = old_files.fingerprint(original, ("samples", "comparisons"))
    code = ("import sys, logging; logging.basicConfig(level=logging.INFO, stream=sys.stdout); "
            "from tsstats.storage.store import Store; Store(sys.argv[1]).close(); print('opened', flush=True)")
    timed = tmp_path / "timed.duckdb"  # one whole upgrade, from exec to exit: the kills fall across it
    shutil.copy(original, timed)
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code, str(timed)], check=True, capture_output=True, timeout=300)
    whole_s = time.monotonic() - started
    os.remove(timed)
    killed_inside = 0
    for delay in [whole_s * share for share in (0.3, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95)]:
        db = tmp_path / "killed.duckdb"
        shutil.copy(original, db)
        log = tmp_path / "killed.log"
        with open(log, "w") as out:
            process = subprocess.Popen([sys.executable, "-c", code, str(db)], stdout=out, stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
            try:
                time.sleep(delay)
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait()
        said = log.read_text()
        killed_inside += "upgrading" in said and "upgraded" not in said
        version = old_files.stamped(db)
        after = old_files.fingerprint(db, ("samples", "comparisons"))
        if version == 3:
            assert after == before, delay  # as it was
        else:
            assert version == SCHEMA_VERSION
            for table, (rows, columns) in before.items():
                assert after[table][0] == rows
                assert {name: value for name, value in columns.items() if (table, name) not in DROPPED} == \
                    {name: value for name, value in after[table][1].items() if name in columns}
        for leftover in (log, db, Path(f"{db}.wal")):  # a WAL of this kill must not meet the next copy
            if leftover.exists():
                os.remove(leftover)
    assert killed_inside >= 2  # the kills that fell inside the upgrade's transaction


def test_a_file_that_cannot_be_upgraded_stops_serve_with_the_reason_and_is_kept(tmp_path):
    db = tmp_path / "old.duckdb"
    old_files.build(db, 3, days=2, comparisons=100)
    before = old_files.fingerprint(db)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
    result = subprocess.run([sys.executable, "-m", "tsstats", "serve", "--db", str(db), "--port", str(port),
                             "--db-memory-limit", "8MB", "--powercap-root", str(tmp_path / "none")],
                            env={**env, **fake_hardware_env()}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "cannot upgrade database file" in result.stderr and "left as it was" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert old_files.stamped(db) == 3
    assert old_files.fingerprint(db) == before
