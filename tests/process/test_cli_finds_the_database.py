"""A client command reaches the database the user named, or the one the service it names holds, never another:
the runtime file beside a served database, ``--port`` and ``--url`` alone, contradictions and stale files."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from support.server import free_port, run_cli


def tsstats(*args: str, home: Path) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, with its default database under ``home`` (not the one tested)."""
    return run_cli(*args, env={"XDG_DATA_HOME": str(home)})


def runtime_file(db: Path) -> Path:
    return Path(f"{db.resolve()}.service.json")


def wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.05)


@pytest.fixture
def served(server_factory, tmp_path):
    """A service on a port that is not the default, holding ``data/a.duckdb``, and a default database of its own
    beside it that holds nothing of a.duckdb."""
    data = tmp_path / "data"
    data.mkdir()
    home = tmp_path / "home"
    default_db = home / "tsstats" / "tsstats.duckdb"
    default_db.parent.mkdir(parents=True)
    duckdb.connect(str(default_db)).close()  # an empty file where the default would be read
    server = server_factory(db=data / "a.duckdb")
    wait_for(runtime_file(server.db))
    return server, home


def test_the_runtime_file_names_the_service_and_goes_with_it(served):
    server, _ = served
    record = json.loads(runtime_file(server.db).read_text())
    assert record["pid"] == server.process.pid and record["url"] == server.url
    assert record["db"] == str(server.db.resolve()) and record["startedAt"].endswith("Z")
    assert server.stop() == 0
    assert not runtime_file(server.db).exists()


@pytest.mark.parametrize("command", ["export", "backup"])
def test_db_alone_reaches_the_service_that_holds_it(served, tmp_path, command):
    server, home = served
    out = tmp_path / f"out-{command}.csv"
    extra = ["--from", "-1h", "--format", "csv"] if command == "export" else []
    result = tsstats(command, "--db", str(server.db), *extra, "--out", str(out), home=home)
    assert result.returncode == 0, result.stderr
    assert f"through the service at {server.url}" in result.stdout and str(server.db.resolve()) in result.stdout
    assert out.stat().st_size > 0


def test_port_alone_uses_the_database_of_the_service_on_it(served, tmp_path):
    server, home = served
    out = tmp_path / "by-port.csv"
    result = tsstats("export", "--port", str(server.port), "--from", "-1h", "--format", "csv", "--out", str(out),
                     home=home)
    assert result.returncode == 0, result.stderr
    assert str(server.db.resolve()) in result.stdout
    with_url = tsstats("export", "--url", server.url, "--from", "-1h", "--format", "csv", "--out",
                       str(tmp_path / "by-url.csv"), home=home)
    assert with_url.returncode == 0, with_url.stderr


def test_a_db_the_service_does_not_hold_is_refused_naming_both(served, tmp_path):
    server, home = served
    other = tmp_path / "data" / "b.duckdb"
    duckdb.connect(str(other)).close()
    out = tmp_path / "wrong.csv"
    result = tsstats("export", "--db", str(other), "--port", str(server.port), "--from", "-1h", "--format", "csv",
                     "--out", str(out), home=home)
    assert result.returncode == 1 and not out.exists()
    assert str(server.db.resolve()) in result.stderr and str(other) in result.stderr and server.url in result.stderr
    assert f"(pid {server.process.pid})" in result.stderr


def test_nothing_on_the_port_is_an_error_not_a_file(served, tmp_path):
    _, home = served
    port = free_port()
    out = tmp_path / "none.csv"
    result = tsstats("export", "--port", str(port), "--from", "-1h", "--format", "csv", "--out", str(out), home=home)
    assert result.returncode == 1 and not out.exists()
    assert f"no tsstats service answers at http://127.0.0.1:{port}" in result.stderr


def test_a_stale_runtime_file_is_ignored_and_removed(tmp_path):
    db = tmp_path / "c.duckdb"
    assert tsstats("synth", "--days", "0.01", "--hz", "1", "--db", str(db), home=tmp_path).returncode == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs: the service was killed with -9
    runtime_file(db).write_text(json.dumps({"pid": gone.pid, "url": "http://127.0.0.1:1", "db": str(db),
                                            "startedAt": "2026-12-01T00:00:00Z"}))
    out = tmp_path / "c.csv"
    result = tsstats("export", "--db", str(db), "--from", "-1h", "--format", "csv", "--out", str(out),
                     home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "through the service" not in result.stdout and out.exists()
    assert not runtime_file(db).exists()


def test_a_file_held_without_a_runtime_file_names_the_holder(tmp_path):
    db = tmp_path / "held.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); "
                               "print('open', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        result = tsstats("backup", "--db", str(db), "--out", str(tmp_path / "copy.duckdb"), home=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert f"process {holder.pid}" in result.stderr and f"{db.resolve()}.service.json" in result.stderr


def test_a_file_that_is_not_a_tsstats_database_says_so(tmp_path):
    db = tmp_path / "other.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE t (x INTEGER)")
    result = tsstats("export", "--db", str(db), "--from", "-1h", "--format", "csv", "--out", str(tmp_path / "o.csv"),
                     home=tmp_path)
    assert result.returncode == 2 and f"{db} is not a tsstats database" in result.stderr
