"""``tsstats.track`` in a script of its own against the real service: the context manager and the decorator,
failures and interruptions, phases, a service that is down or refuses, and an import that costs nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from support.server import free_port


def script(body: str, url: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``body`` as a script of its own with TSSTATS_URL set; its last stdout line is JSON."""
    env = {"TSSTATS_URL": url, "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def last_json(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from support.server import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("track") / "track.duckdb").start()
    yield server
    server.stop()


def test_importing_tsstats_loads_no_heavy_library():
    result = subprocess.run([sys.executable, "-c", "import sys, tsstats; print(sorted(m for m in "
                             "('duckdb', 'sanic', 'numpy', 'psutil') if m in sys.modules))"],
                            capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "[]", result.stderr


def test_a_block_becomes_a_completed_run_with_its_figures(service):
    result = script('''
        import json, os, time, tsstats
        with tsstats.track(models=["resnet50"], name="imagenet val", items=1000, metadata={"batch": 8}) as run:
            with run.phase("warm-up"):
                with run.phase("load"):
                    time.sleep(0.2)
            sum(i * i for i in range(2_000_000))
            run.report(accuracy=76.1, speed=812.0, latency_ms=12.5, items=1200)
        print(json.dumps({"record": run.record, "energy": run.energy_j, "carbon": run.carbon_g,
                          "duration": run.duration_s, "measured": run.measured, "pid": os.getpid()}))
    ''', service.url)
    assert result.returncode == 0, result.stderr
    out = last_json(result)
    record = out["record"]
    assert out["measured"] and record["status"] == "completed" and record["pids"] == [out["pid"]]
    assert record["models"] == ["resnet50"] and record["name"] == "imagenet val"
    assert record["metadata"] == {"batch": 8} and record["items"] == 1200
    assert record["accuracy"] == 76.1 and record["speed"] == 812.0 and record["latencyMs"] == 12.5
    assert out["energy"] == record["energyJ"] > 0 and out["carbon"] == record["carbonG"] > 0
    assert out["duration"] == record["durationS"] > 0.2
    assert record["energyPerItemJ"] == pytest.approx(record["energyJ"] / 1200)
    assert record["attribution"] == "process" and record["methods"]["cpu"] in ("rapl", "tdp_model")
    warm_up, load = record["phases"]
    assert (warm_up["name"], load["name"], load["parent"]) == ("warm-up", "load", warm_up["id"])
    assert warm_up["durationS"] >= load["durationS"] >= 0.2 and warm_up["status"] == "completed"


def test_an_exception_fails_the_run_and_is_raised_on(service):
    result = script('''
        import json, tsstats
        tracker = tsstats.track(models=["m"])
        try:
            with tracker as run:
                raise ValueError("bad batch")
        except ValueError as error:
            print(json.dumps({"raised": str(error), "record": run.record}))
    ''', service.url)
    out = last_json(result)
    assert out["raised"] == "bad batch"
    assert out["record"]["status"] == "failed" and out["record"]["error"] == "ValueError: bad batch"


def test_an_interrupt_cancels_the_run(service):
    result = script('''
        import json, tsstats
        try:
            with tsstats.track(models=["m"]) as run:
                raise KeyboardInterrupt
        except KeyboardInterrupt:
            print(json.dumps(run.record))
    ''', service.url)
    assert last_json(result)["status"] == "cancelled"


def test_the_decorator_measures_each_call(service):
    result = script('''
        import json, tsstats
        @tsstats.track(models=["fn"], name="decorated")
        def work(n):
            return sum(range(n))
        print(json.dumps([work(10), work(20)]))
    ''', service.url)
    assert last_json(result) == [45, 190]
    with service.client() as client:
        items = client.get("/api/comparisons", params={"limit": 50}).json()["items"]
    assert [item["status"] for item in items if item["name"] == "decorated"] == ["completed", "completed"]


def test_without_a_service_the_script_runs_with_one_warning_and_quickly(tmp_path):
    down = f"http://127.0.0.1:{free_port()}"
    result = script('''
        import json, time, tsstats
        started = time.perf_counter()
        with tsstats.track(models=["m"]) as run:
            with run.phase("p"):
                pass
            run.report(accuracy=1.0)
        print(json.dumps({"measured": run.measured, "record": run.record, "took": time.perf_counter() - started}))
    ''', down)
    out = last_json(result)
    assert out["measured"] is False and out["record"] is None and out["took"] < 0.5
    assert result.stderr.count("tsstats:") == 1 and "not measured" in result.stderr
    required = script('''
        import tsstats
        try:
            with tsstats.track(models=["m"], required=True):
                print("ran")
        except tsstats.TsstatsUnavailable as error:
            print("refused:", error)
    ''', down)
    assert required.stdout.startswith("refused:") and "ran" not in required.stdout


def test_bad_arguments_and_refusals_name_the_field(service):
    result = script('''
        import tsstats
        for arguments in ({"models": "resnet"}, {"items": 0}, {"items": True}, {"metadata": [1]}, {"name": ""}):
            try:
                tsstats.track(**arguments)
            except tsstats.TsstatsError as error:
                print(str(error).split(" ")[0])
        try:
            with tsstats.track(metadata={"blob": "x" * 20000}):
                pass
        except tsstats.TsstatsError as error:
            print("service:", error)
        with tsstats.track() as run:
            try:
                run.report(accuracy=101)
            except tsstats.TsstatsError as error:
                print(str(error).split(" ")[0])
    ''', service.url)
    lines = result.stdout.splitlines()
    assert lines[:5] == ["models", "items", "items", "metadata", "name"], result.stdout + result.stderr
    assert lines[5].startswith("service:") and "(field metadata)" in lines[5]
    assert lines[6] == "accuracy"


def test_a_service_gone_during_the_run_is_a_warning_at_the_end(tmp_path):
    from support.server import ServerProcess

    server = ServerProcess(tmp_path / "gone.duckdb").start()
    result = script(f'''
        import json, os, signal, time, tsstats
        with tsstats.track(models=["m"]) as run:
            os.kill({server.process.pid}, signal.SIGKILL)
            time.sleep(0.2)
            outcome = "script result"
        print(json.dumps({{"measured": run.measured, "outcome": outcome}}))
    ''', server.url)
    server.process.wait()
    out = last_json(result)
    assert out == {"measured": False, "outcome": "script result"} and result.returncode == 0
    assert "figures are missing" in result.stderr
    time.sleep(0)


def test_a_token_from_a_file_and_a_refused_token_as_no_service(tmp_path):
    """``token_file`` (or TSSTATS_TOKEN_FILE) carries the token; a service that refuses it (401) is as one that is
    not there: the script runs unmeasured with one warning, or TsstatsUnavailable with required=True."""
    from support.server import ServerProcess

    token_file = tmp_path / "token"
    token_file.write_text("tøken ✓\n", encoding="utf-8")
    with ServerProcess(tmp_path / "guarded.duckdb", env={"TSSTATS_TOKEN": "tøken ✓"}) as server:
        result = script(f"""
            import json, tsstats
            with tsstats.track(name="from a file", token_file={str(token_file)!r}) as run:
                pass
            with tsstats.track(name="wrong", token="not it") as wrong:
                pass
            try:
                with tsstats.track(token="not it", required=True):
                    pass
                refused = None
            except tsstats.TsstatsUnavailable as error:
                refused = str(error)
            print(json.dumps({{"measured": run.measured, "status": run.record["status"],
                               "wrong": wrong.measured, "refused": refused}}))
            """, server.url)
    found = last_json(result)
    assert found["measured"] and found["status"] == "completed"
    assert found["wrong"] is False and "refused the token (401" in found["refused"]
    assert result.stderr.count("refused the token (401") == 1 and "this run is not measured" in result.stderr


def test_compare_callables_in_this_process_and_a_tracked_run_of_a_study(service):
    result = script("""
        import json, tsstats
        work = lambda n: sum(i * i for i in range(n))
        found = tsstats.compare({"small": lambda: work(1_000_000), "large": lambda: work(3_000_000)}, runs=3,
                                warmup=1, items=10, seed=2, allow_unfair=True, study="callables", quiet=True,
                                max_wait=0)
        with tsstats.track(models=["by hand"], study="callables") as run:
            work(100_000)
        try:
            tsstats.compare({"alone": lambda: None})
            refused = None
        except ValueError as error:
            refused = str(error)
        print(json.dumps({"ratios": found.ratios, "stopped": found.stopped, "report": str(found),
                          "runs": [len(r.used) for r in found.results], "study": run.record["metadata"],
                          "refused": refused}))
        """, service.url)
    found = last_json(result)
    assert found["runs"] == [3, 3] and found["stopped"] == "3 runs each"
    energy, duration = found["ratios"]["energy"][0], found["ratios"]["time"][0]
    assert energy["base"] == "small" and energy["other"] == "large" and energy["value"] > 1.3
    assert duration["value"] > 1.3 and "'small' used the least energy per item" in found["report"]
    assert found["study"] == {"study": "callables"}
    assert "two or more named callables" in found["refused"]
    with service.client() as client:
        trials = [item for item in client.get("/api/comparisons", params={"limit": 50}).json()["items"]
                  if item["metadata"].get("study") == "callables"]
    assert len(trials) == 1 + 2 * (1 + 3)  # the tracked run, and each callable's warm-up and three trials
