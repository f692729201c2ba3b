"""``tsstats run -- CMD``: the command's own streams and status, signals passed on, the summary, the record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from support.server import ServerProcess, free_port, run_cli


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("run") / "run.duckdb").start()
    yield server
    server.stop()


def tsstats_run(url: str, *arguments: str, **options) -> subprocess.CompletedProcess[str]:
    return run_cli("run", *arguments, env={"TSSTATS_URL": url}, timeout=60, **options)


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
    assert "\n  fair     yes" in summary or "\n  fair     no: " in summary  # judged, and why not
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


class Started:
    """``tsstats run`` in a session of its own with the signal dispositions the test relies on, whatever the suite
    inherited (a background job ignores SIGINT): the stop signals at their default, or ``ignored``; its whole group
    is killed afterwards, pass or fail, the command included."""

    def __init__(self, url: str, *command: str, ignored: tuple[int, ...] = ()):
        def dispositions() -> None:
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, signal.SIG_IGN if number in ignored else signal.SIG_DFL)

        self.process = subprocess.Popen([sys.executable, "-m", "tsstats", "run", "--", *command],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "TSSTATS_URL": url}, start_new_session=True,
                                        preexec_fn=dispositions)

    def __enter__(self) -> subprocess.Popen[str]:
        return self.process

    def __exit__(self, *exc) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()


SLEEPER = (sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)")


def test_signals_are_passed_on_and_a_kill_is_128_plus_the_signal(service):
    with Started(service.url, *SLEEPER) as process:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 128 + signal.SIGTERM
        assert "failed" in process.stderr.read()
    with Started(service.url, *SLEEPER) as interrupted:
        assert interrupted.stdout.readline() == "ready\n"
        interrupted.send_signal(signal.SIGINT)  # sent to tsstats run alone: taken and passed on
        assert interrupted.wait(30) != 0
        assert "cancelled" in interrupted.stderr.read()


def test_a_stop_signal_inherited_as_ignored_is_still_taken_and_the_command_keeps_it_ignored(service):
    """As a background job (SIGINT ignored) or under nohup (SIGHUP): tsstats run still takes them (a SIGINT
    sent to it marks the run cancelled), and the command gets them ignored, as it would have run alone."""
    check = ("import signal, time; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN, "
             "signal.getsignal(signal.SIGHUP) == signal.SIG_IGN, signal.getsignal(signal.SIGTERM) is not "
             "signal.SIG_IGN, flush=True); time.sleep(60)")
    with Started(service.url, sys.executable, "-c", check, ignored=(signal.SIGINT, signal.SIGHUP)) as process:
        assert process.stdout.readline() == "True True True\n"
        process.send_signal(signal.SIGINT)  # taken, passed on, and ignored by the command
        process.send_signal(signal.SIGTERM)  # ends it
        assert process.wait(30) == 128 + signal.SIGTERM
        assert "cancelled" in process.stderr.read()


def test_the_summary_never_goes_into_the_commands_streams(service, tmp_path):
    """With stderr closed (``2>&-``) the summary goes nowhere: not into the command's stdout file."""
    out = tmp_path / "out.txt"
    with open(out, "w") as handle:
        result = subprocess.run([sys.executable, "-m", "tsstats", "run", "--", "printf", "x\\n"], stdout=handle,
                                env={**os.environ, "TSSTATS_URL": service.url}, timeout=60,
                                preexec_fn=lambda: os.close(2))
    assert result.returncode == 0
    assert out.read_text() == "x\n"
    with service.client() as client:
        last = client.get("/api/comparisons", params={"limit": 1}).json()["items"][0]
    assert last["name"] == "printf 'x\\n'" and last["status"] == "completed"  # measured all the same


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("guarded") / "guarded.duckdb",
                           env={"TSSTATS_TOKEN": "s3cret-tøken"}).start()
    yield server
    server.stop()


def test_the_token_comes_from_a_file_and_a_wrong_one_runs_unmeasured(guarded, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-tøken\n", encoding="utf-8")
    measured = tsstats_run(guarded.url, "--token-file", str(token_file), "--", "true")
    assert measured.returncode == 0 and "completed (exit 0)" in measured.stderr and "energy" in measured.stderr
    env = {**os.environ, "TSSTATS_URL": guarded.url, "TSSTATS_TOKEN_FILE": str(token_file)}
    from_env = subprocess.run([sys.executable, "-m", "tsstats", "run", "--", "true"], capture_output=True,
                              text=True, timeout=60, env=env)
    assert from_env.returncode == 0 and "energy" in from_env.stderr, from_env.stderr
    wrong = tsstats_run(guarded.url, "--token", "not-it", "--", "true")
    assert wrong.returncode == 0 and "refused the token (401" in wrong.stderr and "runs unmeasured" in wrong.stderr
    assert wrong.stderr.count("tsstats:") == 2  # the warning and the summary, nothing else
    assert tsstats_run(guarded.url, "--token", "not-it", "--required", "--", "true").returncode == 2
    missing = tsstats_run(guarded.url, "--token-file", str(tmp_path / "absent"), "--", "true")
    assert missing.returncode == 2 and "cannot read the token file" in missing.stderr


def test_without_a_service_the_command_still_runs(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = tsstats_run(down, "--", "true")
    assert result.returncode == 0 and "runs unmeasured" in result.stderr
    assert tsstats_run(down, "--required", "--", "true").returncode == 2
    assert time.monotonic() - started < 20


def test_a_service_on_another_port_is_found_from_its_runtime_file(tmp_path):
    """No URL given: the service holding TSSTATS_DB, or the default database under XDG_DATA_HOME, is found from
    the runtime file beside it, as tsstats export finds it."""
    default = tmp_path / "data" / "tsstats" / "tsstats.duckdb"
    default.parent.mkdir(parents=True)
    with ServerProcess(default) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
        by_default = subprocess.run([sys.executable, "-m", "tsstats", "run", "--", "true"], capture_output=True,
                                    text=True, timeout=60, env={**env, "XDG_DATA_HOME": str(tmp_path / "data")})
        by_db = subprocess.run([sys.executable, "-m", "tsstats", "run", "--", "true"], capture_output=True, text=True,
                               timeout=60, env={**env, "TSSTATS_DB": str(default), "XDG_DATA_HOME": "/nonexistent"})
        with server.client() as client:
            runs = client.get("/api/comparisons").json()["items"]
    assert server.port != 8000
    for result in (by_default, by_db):
        assert result.returncode == 0 and "energy" in result.stderr, result.stderr
    assert len(runs) == 2
