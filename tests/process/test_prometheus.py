"""/metrics checked by promtool and scraped by a real Prometheus server."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest
from support.server import free_port

promtool = shutil.which("promtool")
prometheus = shutil.which("prometheus")


@pytest.mark.skipif(promtool is None, reason="promtool is installed by scripts/test.sh (Debian: prometheus)")
def test_metrics_pass_promtool(server_factory):
    server = server_factory()
    time.sleep(1.5)
    with server.client() as client:
        client.post("/api/comparisons", json={"models": ["a", "b"]})
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for name in ("tsstats_cpu_usage_ratio", "tsstats_memory_usage_ratio", "tsstats_energy_joules_total",
                 "tsstats_comparisons", "tsstats_http_requests_total", "tsstats_database_memory_bytes",
                 "tsstats_cpu_seconds_total", "tsstats_filesystem_used_ratio", "tsstats_self_cpu_seconds_total",
                 "tsstats_self_resident_memory_bytes", "tsstats_self_energy_joules_total", "tsstats_sample_rate_hertz"):
        assert f"# TYPE {name.removesuffix('_total')}" in text and f"\n{name}" in text, name
    held = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("tsstats_database_memory_bytes{")}
    assert "BASE_TABLE" in held and all(value >= 0 for value in held.values())  # DuckDB's own tags
    modes = {line.split('"')[1] for line in text.splitlines() if line.startswith("tsstats_cpu_seconds_total{")}
    assert modes == {"user", "system", "iowait", "steal"}
    parts = {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
             if line.startswith("tsstats_self_cpu_seconds_total{")}
    assert set(parts) == {"ticks", "conditions", "flush", "rollups", "stats", "writes", "housekeeping", "other"}
    assert parts["ticks"] > 0 and all(value >= 0 for value in parts.values())
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(prometheus is None, reason="prometheus is installed by scripts/test.sh (Debian: prometheus)")
def test_a_stock_prometheus_scrapes_it(server_factory, tmp_path):
    server = server_factory(env={"TSSTATS_TOKEN": "scrape-token"})
    port = free_port()
    (tmp_path / "token").write_text("scrape-token")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: tsstats
    authorization:
      credentials_file: {tmp_path / 'token'}
    static_configs:
      - targets: ['127.0.0.1:{server.port}']
""")
    process = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        result = None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/query",
                                   params={"query": 'tsstats_cpu_usage_ratio * on() group_left() up{job="tsstats"}'},
                                   timeout=2).json()
                if answer.get("data", {}).get("result"):
                    result = answer["data"]["result"]
                    break
            except (httpx.HTTPError, ValueError):  # not listening yet, or a plain-text "not ready" answer
                pass
            time.sleep(0.5)
        assert result, "Prometheus never stored a sample of tsstats_cpu_usage_ratio"
        value = float(result[0]["value"][1])
        assert 0 <= value <= 1
        energy = httpx.get(f"http://127.0.0.1:{port}/api/v1/query",
                           params={"query": 'tsstats_energy_joules_total{component="cpu"}'}, timeout=2).json()
        assert float(energy["data"]["result"][0]["value"][1]) > 0
    finally:
        process.terminate()
        process.wait(10)
