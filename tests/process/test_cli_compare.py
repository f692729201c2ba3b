"""``tsstats compare``: two commands over interleaved trials against the real service (energy and time, ratios
with intervals and verdicts, the exports), without a service (time only), --runs auto, a failing command, bad
input and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from support.server import ServerProcess, free_port, run_cli

WORK = "import sys; sum(i * i for i in range(int(sys.argv[1])))"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("compare") / "compare.duckdb").start()
    yield server
    server.stop()


def compare(url: str, *arguments: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return run_cli("compare", "--url", url, *arguments, env={"TSSTATS_URL": url}, timeout=timeout)


@pytest.mark.quiet  # its verdicts are statistics of measured trials: run alone, after the rest (scripts/test.sh)
def test_twice_the_work_costs_about_twice_the_energy_and_time(service, tmp_path):
    exports = {kind: tmp_path / f"study.{kind}" for kind in ("json", "csv", "md")}
    # fairness is not what this test is about: on a busy machine every short trial may be judged unfair
    # six rounds: with four, one trial slowed by the machine left the interval of a 1.6x ratio touching 1 (once)
    result = compare(service.url, "--runs", "6", "--warmup", "1", "--seed", "3", "--items", "100", "--allow-unfair",
                     "--max-wait", "0",
                     "--study", "work study", "--name", "single", "--name", "double",
                     "--export-json", str(exports["json"]), "--export-csv", str(exports["csv"]),
                     "--export-markdown", str(exports["md"]),
                     "--", sys.executable, "-c", WORK, "2500000", "--", sys.executable, "-c", WORK, "5000000")
    assert result.returncode == 0, result.stderr
    assert "Energy per item as measured (mean ± σ)" in result.stdout and "Time (mean ± σ)" in result.stdout
    assert "net of idle" not in result.stdout  # no idle baseline was asked for
    assert "'single' used the least energy per item" in result.stdout and "'single' ran fastest" in result.stdout
    study = json.loads(exports["json"].read_text())
    energy, duration = study["ratios"]["energy"][0], study["ratios"]["time"][0]
    assert energy["other"] == "double" and energy["value"] > 1.3 and energy["significant"]  # CPU time: robust
    assert duration["other"] == "double" and duration["value"] > 1.1  # wall time: a busy machine blurs it
    assert energy["ci_low"] <= energy["value"] <= energy["ci_high"]
    assert [len(command["trials"]) for command in study["commands"]] == [6, 6]
    measurer = study["measurer"]  # the measurer's own footprint beside the measured work
    assert measurer["trials"] == 12 and 0 <= measurer["sharePct"] < 100 and measurer["machineEnergyJ"] > 0
    assert "tsstats itself used " in result.stdout
    assert "of the machine's energy over the trials' windows" in result.stdout
    assert exports["csv"].read_text().splitlines()[1].startswith("single,6,0,")
    assert exports["md"].read_text().startswith("| Command | Energy (J) |")
    with service.client() as client:
        trials = [item for item in client.get("/api/comparisons", params={"limit": 50}).json()["items"]
                  if item["metadata"].get("study") == "work study"]
    assert len(trials) == 14 and sum(item["metadata"]["warmup"] for item in trials) == 2  # one warm-up each
    order = [item["metadata"]["command"] for item in sorted(trials, key=lambda item: item["id"])
             if not item["metadata"]["warmup"]]
    assert order != ["single", "double"] * 6 or order != ["double", "single"] * 6  # shuffled rounds


def test_on_a_machine_that_is_never_quiet_it_waits_retries_and_says_so_plainly(service, tmp_path):
    """Burners on every CPU outside the study: before each trial it waits --max-wait for a quiet machine and
    says it started without one, each unfair trial is run again --retries times, and with every trial unfair
    it prints the figures of all of them under a plain statement and exits 1 (a busier machine only adds)."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        result = compare(service.url, "--runs", "2", "--warmup", "0", "--max-wait", "1", "--retries", "1",
                         "--study", "never quiet", "--export-json", str(tmp_path / "study.json"),
                         "--", "sleep", "0.3", "--", "sleep", "0.4")
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The machine was never quiet: every trial of" in result.stdout and "contention" in result.stdout
    assert "started without one (contention" in result.stdout, result.stdout
    assert result.stderr.count("the machine was not quiet and cool within 1 s (contention") == 1, result.stderr
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["neverQuiet"] and all(len(command["trials"]) == 4 for command in study["commands"])  # 2 x 2 tries
    assert all(trial["waited_s"] >= 1 and trial["unsettled"] for command in study["commands"]
               for trial in command["trials"])
    with service.client() as client:
        stored = client.get("/api/studies/never quiet").json()
    assert stored["neverQuiet"] and stored["commands"][0]["time"]["n"] == 4, stored
    assert all(trial["waited_s"] >= 1 for command in stored["commands"] for trial in command["trials"])


def test_an_idle_baseline_gives_each_energy_also_net_of_it_both_labelled(service, tmp_path):
    result = compare(service.url, "--runs", "3", "--warmup", "0", "--max-wait", "0", "--allow-unfair",
                     "--idle-baseline", "1", "--items", "10", "--study", "idle study",
                     "--export-json", str(tmp_path / "study.json"), "--", "sleep", "0.1", "--", "sleep", "0.2")
    assert result.returncode == 0, result.stderr
    assert "Idle baseline: " in result.stdout and " W over " in result.stdout
    assert "Energy per item as measured (mean ± σ)" in result.stdout
    assert "Energy per item net of idle (mean ± σ)" in result.stdout
    study = json.loads((tmp_path / "study.json").read_text())
    idle_w = study["idleBaseline"]["powerW"]
    assert idle_w > 0
    for command in study["commands"]:  # net = the machine's energy over each window - idle power x it, per item
        nets = [(trial["machine_energy_j"] - idle_w * trial["window_s"]) / 10 for trial in command["trials"]]
        assert command["energyNetOfIdle"]["mean"] == pytest.approx(sum(nets) / len(nets), rel=1e-9, abs=1e-12)
        assert all(trial["machine_energy_j"] >= trial["energy_j"] for trial in command["trials"])  # its share
    with service.client() as client:
        stored = client.get("/api/studies/idle study").json()
        assert stored["idleBaseline"]["powerW"] == pytest.approx(idle_w, rel=0.01)
        assert {command["name"] for command in stored["commands"]} == {"sleep 0.1", "sleep 0.2"}  # no baseline
        assert "idle baseline" not in client.get("/api/studies").json()["items"][0]["contenders"]


def test_without_a_service_the_commands_are_timed_with_one_warning():
    down = f"http://127.0.0.1:{free_port()}"
    result = compare(down, "--runs", "3", "--", "sleep", "0.05", "--", "sleep", "0.15")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("energy is not measured") == 1
    assert "energy was not measured" in result.stdout and "'sleep 0.05' ran fastest" in result.stdout


def test_runs_auto_adds_rounds_until_the_target_or_the_maximum_and_says_which():
    down = f"http://127.0.0.1:{free_port()}"
    capped = compare(down, "--runs", "auto", "--min-runs", "3", "--max-runs", "4", "--target-ci", "0.0001",
                     "--warmup", "0", "--", "sleep", "0.02", "--", "sleep", "0.06")
    assert capped.returncode == 0 and "stopped at --max-runs 4" in capped.stdout, capped.stdout
    reached = compare(down, "--runs", "auto", "--min-runs", "3", "--target-ci", "90", "--warmup", "0",
                      "--", "sleep", "0.02", "--", "sleep", "0.06")
    assert reached.returncode == 0 and "every ratio within ±90 % after 3 runs each" in reached.stdout, reached.stdout


def test_a_failing_command_stops_the_study_with_its_output():
    down = f"http://127.0.0.1:{free_port()}"
    result = compare(down, "--runs", "3", "--warmup", "0", "--", "true", "--", "sh", "-c", "echo boom; exit 3")
    assert result.returncode == 1
    assert "exited with status 3" in result.stderr and "| boom" in result.stderr


@pytest.mark.parametrize(("arguments", "code", "message"), [
    (["--", "true"], 2, "name two or more commands"),
    (["--runs", "0", "--", "true", "--", "true"], 2, "runs must be auto or a whole number"),
    (["--warmup", "-1", "--", "true", "--", "true"], 2, "warmup"),
    (["--nonsense", "--", "true", "--", "true"], 2, "unrecognized arguments"),
    (["--name", "one", "--", "true", "--", "true"], 2, "--name was given 1 times for 2 commands"),
    (["--", "true", "--", "no-such-command-anywhere"], 127, "no-such-command-anywhere: command not found"),
])
def test_bad_input_is_refused_before_any_trial(service, arguments, code, message):
    with service.client() as client:
        before = len(client.get("/api/comparisons", params={"limit": 500}).json()["items"])
    result = compare(service.url, *arguments)
    assert result.returncode == code and message in result.stderr, result.stderr
    with service.client() as client:
        assert len(client.get("/api/comparisons", params={"limit": 500}).json()["items"]) == before


def test_ctrl_c_keeps_the_trials_done_and_prints_them(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    process = subprocess.Popen([sys.executable, "-m", "tsstats", "compare", "--url", down, "--runs", "50",
                                "--warmup", "0", "--export-json", str(tmp_path / "study.json"), "--", "sleep",
                                "0.1", "--", "sleep", "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(1.5)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 130
    assert "cancelled with Ctrl-C" in out and "Command 1: sleep 0.1" in out
    study = json.loads((tmp_path / "study.json").read_text())
    assert 1 <= len(study["commands"][0]["trials"]) < 50
