"""A lab of machines through the engines that exist: the Prometheus rules checked and unit-tested by promtool,
every panel of the Grafana dashboard evaluated by a real Prometheus scraping two real tsstats instances, and
two instances' comparisons exports read together in one DuckDB query (docs/lab.md's)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import duckdb
import httpx
import pytest
from support.server import ServerProcess, free_port, run_cli

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "tsstats-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tsstats-rules.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tsstats-lab.json"
LAB_QUERY = ROOT / "docs" / "lab.sql"
promtool = shutil.which("promtool")
prometheus = shutil.which("prometheus")
# what Grafana would put for its own variables, and for the dashboard's host and model (All)
GRAFANA = {"$__rate_interval": "30s", "$__range": "10m", "$host": ".*", "$model": ".*"}
FAKE_GPU = [{"name": "Fake H100", "util": 40, "power_mw": 150_000, "temperature": 55}]


@pytest.mark.skipif(promtool is None, reason="promtool is installed by scripts/test.sh (Debian: prometheus)")
def test_the_rules_pass_promtool_and_their_unit_tests():
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent,
                            capture_output=True, text=True)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    tests = RULE_TESTS.read_text()
    recorded = re.findall(r"- record: (\S+)", RULES.read_text())
    alerts = re.findall(r"- alert: (\S+)", RULES.read_text())
    assert len(recorded) >= 10 and len(alerts) == 3
    assert [name for name in recorded + alerts if name not in tests] == []  # each rule has a test


def run_once(server: ServerProcess, model: str, items: int) -> None:
    with server.client() as client:
        record = client.post("/api/comparisons", json={"models": [model], "status": "running",
                                                       "items": items}).json()
        time.sleep(0.3)
        assert client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed",
                                                                     "accuracy": 80.0}).status_code == 200


def query(port: int, expression: str) -> list[dict]:
    answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expression}, timeout=10).json()
    assert answer["status"] == "success", (expression, answer)
    return answer["data"]["result"]


def wait_for(port: int, expression: str, seconds: float = 60) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = query(port, expression)
            if found:
                return found
        except (httpx.HTTPError, ValueError):  # not listening yet, or a plain-text "not ready" answer
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus never answered {expression!r} with a series")


def substituted(expression: str) -> str:
    for variable, value in GRAFANA.items():
        expression = expression.replace(variable, value)
    assert "$" not in expression, expression
    return expression


@pytest.mark.skipif(prometheus is None, reason="prometheus is installed by scripts/test.sh (Debian: prometheus)")
def test_every_panel_of_the_dashboard_answers_from_a_prometheus_scraping_two_instances(tmp_path):
    """Two tsstats (one with a fake GPU), a stock Prometheus loading the lab's rules and scraping both every
    second; runs on both, each model's counters moving while scraped; then each panel's queries with Grafana's
    variables put in: every panel returns series, and every series has the labels its legend names."""
    dashboard = json.loads(DASHBOARD.read_text())
    with ServerProcess(tmp_path / "a.duckdb") as first, \
            ServerProcess(tmp_path / "b.duckdb", gpus=FAKE_GPU) as second:
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['{RULES}']
scrape_configs:
  - job_name: tsstats
    static_configs:
      - targets: ['127.0.0.1:{first.port}', '127.0.0.1:{second.port}']
""")
        process = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                                    f"--web.listen-address=127.0.0.1:{port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert len(wait_for(port, 'up{job="tsstats"} == 1')) >= 1
            deadline = time.monotonic() + 60
            while len(query(port, 'up{job="tsstats"} == 1')) < 2 and time.monotonic() < deadline:
                time.sleep(0.5)
            for server in (first, second):  # a first run makes each model's series; the second moves them
                run_once(server, "vit", 40)
                run_once(server, "bert", 10)
            wait_for(port, "count(tsstats_model_items_total) >= 4")
            time.sleep(2.5)
            for server in (first, second):
                run_once(server, "vit", 60)
                run_once(server, "bert", 20)
            wait_for(port, "sum(tsstats_model_items_total) >= 260")
            time.sleep(2.5)
            for variable in dashboard["templating"]["list"]:
                if variable["type"] == "query":
                    found = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"])
                    assert found, variable["definition"]
                    values = {series["metric"][found[2]] for series in query(port, found[1])}
                    assert len(values) >= 2, (variable["name"], values)  # two hosts; two models
            empty = []
            for panel in dashboard["panels"]:
                answered = 0
                for target in panel["targets"]:
                    result = query(port, substituted(target["expr"]))
                    answered += len(result)
                    legend = re.findall(r"\{\{\s*(\w+)\s*\}\}", target["legendFormat"])
                    for series in result:
                        assert all(label in series["metric"] for label in legend), (panel["title"], series)
                if not answered:
                    empty.append(panel["title"])
            assert empty == [], f"panels whose queries returned nothing: {empty}"
            rules = httpx.get(f"http://127.0.0.1:{port}/api/v1/rules", timeout=10).json()["data"]["groups"]
            assert {group["name"] for group in rules} == {"tsstats-recording", "tsstats-alerts"}
            assert all(rule["health"] != "err" for group in rules for rule in group["rules"])
            per_item = query(port, "instance_model:tsstats_energy_per_item_joules:ratio1h")
            assert {series["metric"]["model"] for series in per_item} == {"vit", "bert"}
        finally:
            process.terminate()
            process.wait(10)


def test_two_machines_exports_read_together_in_one_query(tmp_path):
    """Each machine exports its comparisons (host_name names it); docs/lab.sql reads both files in one DuckDB
    query: per model and host, runs and energy per item with its spread, and what makes the machines comparable."""
    files = []
    for host, gpus in (("lab-a", None), ("lab-b", FAKE_GPU)):
        with ServerProcess(tmp_path / f"{host}.duckdb", env={"TSSTATS_HOST_NAME": host}, gpus=gpus) as server:
            for items in (40, 50, 60):
                run_once(server, "vit", items)
            run_once(server, "bert", 10)
        out = tmp_path / f"{host}.parquet"
        result = run_cli("export", "--comparisons", "--db", str(tmp_path / f"{host}.duckdb"), "--format", "parquet",
                         "--out", str(out), env={"TSSTATS_HOST_NAME": host})
        assert result.returncode == 0 and f"host {host}" in result.stdout, result.stderr
        files.append(out)
    sql = LAB_QUERY.read_text().replace("'exports/*.parquet'", f"'{tmp_path}/lab-*.parquet'")
    rows = duckdb.sql(sql).fetchall()
    columns = duckdb.sql(sql).columns
    found = {(row[columns.index("model")], row[columns.index("host")]): dict(zip(columns, row, strict=True))
             for row in rows}
    assert set(found) == {("vit", "lab-a"), ("vit", "lab-b"), ("bert", "lab-a"), ("bert", "lab-b")}
    vit = found[("vit", "lab-b")]
    assert vit["runs"] == 3 and vit["energy_per_item_J"] > 0 and vit["stdev_J"] is not None
    assert vit["gpu_model"] == "Fake H100" and found[("vit", "lab-a")]["gpu_model"] is None
    assert all(row["cpu_energy_method"] and row["grid_region"] for row in found.values())
