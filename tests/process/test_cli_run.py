"""``tsstats run -- CMD``: the command's own streams and status, signals passed on, the summary, the record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from support.server import ServerProcess, free_port


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("run") / "run.duckdb").start()
    yield server
    server.stop()


def tsstats_run(url: str, *arguments: str, **options) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TSSTATS_URL": url}
    return subprocess.run([sys.executable, "-m", "tsstats", "run", *arguments], capture_output=True, text=True,
                          timeout=60, env=env, **options)


def test_the_command_keeps_its_streams_and_status_and_the_summary_says_what_it_cost(service, tmp_path):
    result_file, record_file = tmp_path / "result.json", tmp_path / "record.json"
    code = (f"import json, sys; sum(i * i for i in range(3_000_000)); print('out'); print('err', file=sys.stderr);"
            f"json.dump({{'accuracy': 88.0, 'items': 300}}, open({str(result_file)!r}, 'w')); sys.exit(3)")
    result = tsstats_run(service.url, "--name", "bench", "--model", "m1", "--model", "m2", "--result",
                         str(result_file), "--json", str(record_file), "--", sys.executable, "-c", code,
                         input="")
    assert result.returncode == 3 and result.stdout == "out\n"
    assert result.stderr.startswith("err\n")
    summary = result.stderr.split("err\n", 1)[1]
    assert "tsstats: bench: failed (exit 3) in" in summary and "energy" in summary and "carbon" in summary
    assert "per item" in summary and "share" in summary
    record = json.loads(record_file.read_text())
    assert record["status"] == "failed" and record["error"] == "exit status 3"
    assert record["models"] == ["m1", "m2"] and record["accuracy"] == 88.0 and record["items"] == 300
    assert record["energyJ"] > 0 and record["machineEnergyKwh"] >= record["energyKwh"]


def test_a_command_that_succeeds_completes_and_one_with_no_model_counts(service):
    result = tsstats_run(service.url, "--", "true")
    assert result.returncode == 0 and "completed (exit 0)" in result.stderr
    with service.client() as client:
        last = client.get("/api/comparisons", params={"limit": 1}).json()["items"][0]
    assert last["models"] == [] and last["name"] == "true" and last["status"] == "completed"


def test_missing_and_unrunnable_commands_exit_as_a_shell_does(service, tmp_path):
    missing = tsstats_run(service.url, "--", "no-such-command-anywhere")
    assert missing.returncode == 127 and "command not found" in missing.stderr
    script = tmp_path / "not-executable.sh"
    script.write_text("echo hi\n")
    unrunnable = tsstats_run(service.url, "--", str(script))
    assert unrunnable.returncode == 126 and "permission denied" in unrunnable.stderr
    assert tsstats_run(service.url).returncode == 2  # no command at all


def test_signals_are_passed_on_and_a_kill_is_128_plus_the_signal(service):
    env = {**os.environ, "TSSTATS_URL": service.url}
    process = subprocess.Popen([sys.executable, "-m", "tsstats", "run", "--", sys.executable, "-c",
                                "import time; print('ready', flush=True); time.sleep(60)"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 128 + signal.SIGTERM
    assert "failed" in process.stderr.read()
    interrupted = subprocess.Popen([sys.executable, "-m", "tsstats", "run", "--", sys.executable, "-c",
                                    "import time; print('ready', flush=True); time.sleep(60)"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert interrupted.stdout.readline() == "ready\n"
    interrupted.send_signal(signal.SIGINT)  # sent to tsstats run alone: passed on
    assert interrupted.wait(30) != 0
    assert "cancelled" in interrupted.stderr.read()


def test_without_a_service_the_command_still_runs(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = tsstats_run(down, "--", "true")
    assert result.returncode == 0 and "runs unmeasured" in result.stderr
    assert tsstats_run(down, "--required", "--", "true").returncode == 2
    assert time.monotonic() - started < 20
