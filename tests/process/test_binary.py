"""The one-file executable, built from this checkout by scripts/build-binary.sh and run from an empty
directory with nothing but PATH and HOME: `check`, `serve` answering the stats route, `export`, `backup`,
`install-service --print`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support.server import free_port

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def binary() -> Path:
    built = subprocess.run(["bash", str(ROOT / "scripts" / "build-binary.sh")], capture_output=True, text=True,
                           timeout=1200)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    path = ROOT / "dist" / "tsstats"
    assert path.exists() and path.stat().st_size > 20_000_000
    return path


def bare(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment with nothing but PATH and HOME, and an empty working directory."""
    home, work = tmp_path / "home", tmp_path / "empty"
    home.mkdir()
    work.mkdir()
    return {"PATH": "/usr/bin:/bin", "HOME": str(home)}, work


def test_check_runs_on_a_bare_machine(binary, tmp_path):
    env, work = bare(tmp_path)
    result = subprocess.run([str(binary), "check", "--json"], env=env, cwd=work, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cpu"]["logicalCpus"] >= 1 and report["grid"]["gPerKwh"] == 473.0
    assert report["database"] == f"{env['HOME']}/.local/share/tsstats/tsstats.duckdb"


def test_serve_export_backup_and_unit_from_the_binary(binary, tmp_path):
    env, work = bare(tmp_path)
    port = free_port()
    db = tmp_path / "bin.duckdb"
    server = subprocess.Popen([str(binary), "serve", "--port", str(port), "--db", str(db)], env=env, cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        stats = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/dashboard/stats", timeout=5)
                assert answer.status_code == 200
                stats = answer.json()
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert stats is not None, server.stdout.read() if server.poll() is not None else "no answer"
        assert stats["meta"]["units"]["liveStats"]["carbonFootprint"] == "g CO2e"
        created = httpx.post(f"http://127.0.0.1:{port}/api/comparisons", json={"models": ["a"]}, timeout=5)
        assert created.status_code == 201
        time.sleep(6)  # a flush
        run = {"env": env, "cwd": work, "capture_output": True, "text": True, "timeout": 120}
        exported = subprocess.run([str(binary), "export", "--db", str(db), "--port", str(port), "--from", "-1h",
                                   "--format", "parquet", "--out", str(tmp_path / "x.parquet")], **run)
        assert exported.returncode == 0, exported.stderr
        backed = subprocess.run([str(binary), "backup", "--db", str(db), "--port", str(port), "--out",
                                 str(tmp_path / "copy.duckdb")], **run)
        assert backed.returncode == 0, backed.stderr
        unit = subprocess.run([str(binary), "install-service", "--print"], **run)
        assert unit.returncode == 0 and f"ExecStart={binary} serve" in unit.stdout
    finally:
        server.terminate()
        server.wait(30)
    assert server.returncode == 0
    import duckdb

    assert duckdb.connect(str(tmp_path / "copy.duckdb"), read_only=True).execute(
        "SELECT count(*) FROM comparisons").fetchone()[0] == 1
    assert duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'x.parquet'}'").fetchall()[0][0] > 10
