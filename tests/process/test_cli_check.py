"""`tsstats check`: what this machine can measure, with the fix for what is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.powercap import FakePowercap
from support.server import run_cli


def check(*args: str, gpus: list[dict] | None = None, host_hardware: bool = False) -> subprocess.CompletedProcess:
    """``tsstats check`` as a process; it sees the fake pynvml (``gpus``, default none) unless ``host_hardware``."""
    return run_cli("check", *args, timeout=60, gpus=gpus, host_hardware=host_hardware)


def test_check_json_without_gpu_or_rapl(tmp_path):
    result = check("--json", "--db", str(tmp_path / "x.duckdb"), "--powercap-root", str(tmp_path / "none"))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cpu"]["logicalCpus"] >= 1 and report["cpu"]["tdpW"] > 0
    assert report["rapl"]["cpuMethod"] == "tdp_model"
    assert report["gpu"]["available"] is False and report["gpu"]["error"] and report["gpu"]["readers"] == "absent"
    assert report["grid"]["region"] == "WORLD" and report["grid"]["gPerKwh"] == 473.0
    assert any("no RAPL package domain" in fix for fix in report["fixes"])
    assert any("NVIDIA or AMD" in fix for fix in report["fixes"])
    assert report["service"] is None  # nothing holds that file


def test_check_gives_the_footprint_of_the_service_holding_the_database(server_factory, tmp_path):
    """With a service holding the database, check says what that service itself costs: CPU, memory, energy."""
    db = tmp_path / "held.duckdb"
    server = server_factory(db=db)
    result = check("--json", "--db", str(db))
    assert result.returncode == 0, result.stderr
    service = json.loads(result.stdout)["service"]
    assert service["url"] == server.url and service["sampleRateHz"] == 10.0
    footprint = service["footprint"]
    assert footprint["cpuS"] > 0 and footprint["residentBytes"] > 10e6 and footprint["energyJ"] >= 0
    assert set(footprint["cpuByPartS"]) == {"ticks", "conditions", "flush", "rollups", "stats", "writes",
                                             "housekeeping", "other"}
    text = check("--db", str(db)).stdout
    assert f"footprint    the service at {server.url} (sampling at 10 Hz now): " in text and "% of a core" in text


def test_check_with_gpus(tmp_path):
    gpus = [{"name": "Fake H200", "energy_mj": 5}, {"name": "Fake T4"}]
    result = check("--powercap-root", str(tmp_path / "none"), gpus=gpus)
    assert result.returncode == 0, result.stderr
    assert "GPUs         2 through nvml (driver nvml 999.99)" in result.stdout
    assert "GPU 0      Fake H200 (NVML): energy counter yes, power yes" in result.stdout
    assert "GPU 1      Fake T4 (NVML): energy counter no, power yes" in result.stdout
    assert "GPU 1 has no NVML energy counter" in result.stdout


def test_check_on_this_host_runs(tmp_path):
    """On the host's own hardware, whatever it is: the report is whole and agrees with itself."""
    result = check("--json", "--db", str(tmp_path / "x.duckdb"), host_hardware=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rapl"]["cpuMethod"] == ("rapl" if report["rapl"]["packages"] else "tdp_model")
    assert report["gpu"]["available"] == bool(report["gpu"]["gpus"])


def test_check_tells_how_to_grant_rapl_access(tmp_path):
    tree = FakePowercap(tmp_path / "powercap", packages=1)
    tree.make_unreadable("intel-rapl:0")
    result = check("--powercap-root", str(tmp_path / "powercap"), "--db", str(tmp_path / "x.duckdb"))
    assert result.returncode == 0, result.stderr
    assert "intel-rapl:0 (package-0) unreadable" in result.stdout
    assert "chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj" in result.stdout
    assert "To measure more:" in result.stdout


def test_check_reads_a_readable_powercap(tmp_path):
    FakePowercap(tmp_path / "powercap", packages=2)
    report = json.loads(check("--json", "--powercap-root", str(tmp_path / "powercap")).stdout)
    assert report["rapl"]["cpuMethod"] == "rapl" and report["rapl"]["memoryMethod"] == "rapl_dram"
    assert len(report["rapl"]["packages"]) == 2


def test_unknown_region_is_refused_with_the_codes(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tsstats", "serve", "--grid-region", "XYZ", "--db",
                             str(tmp_path / "x.duckdb"), "--port", "1"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "unknown grid region 'XYZ'" in result.stderr and "FRA" in result.stderr and "WORLD" in result.stderr


def test_bad_flags_exit_with_usage_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tsstats", "serve", "--port", "http"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "--port: expected an integer" in result.stderr
    result = subprocess.run([sys.executable, "-m", "tsstats", "serve", "--no-such-flag"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def tsstats_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, env=env, timeout=60)


@pytest.mark.parametrize("args", [
    ["--grid-region", "XYZ"],
    ["--host", "0.0.0.0"],
    ["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"],
])
def test_check_refuses_what_serve_refuses_with_the_same_message(tmp_path, args):
    common = ["--db", str(tmp_path / "x.duckdb"), "--powercap-root", str(tmp_path / "none")]
    served = tsstats_cli("serve", *common, "--port", "1", *args)
    checked = tsstats_cli("check", *common, *args)
    assert served.returncode == checked.returncode == 1
    assert checked.stderr.strip() == served.stderr.strip() and checked.stderr.startswith("tsstats: ")
    assert checked.stdout == ""
    assert not (tmp_path / "x.duckdb").exists()  # neither opened the database


def test_a_path_setting_that_names_nothing_is_a_warning_naming_it(tmp_path):
    result = tsstats_cli("check", "--json", "--proc-root", "/nonexistent", "--db", str(tmp_path / "x.duckdb"))
    assert result.returncode == 0
    assert "warning: proc_root /nonexistent has no stat file" in result.stderr and "psutil" in result.stderr
    assert any("proc_root /nonexistent" in warning for warning in json.loads(result.stdout)["warnings"])


def test_no_command_prints_the_usage_and_starts_nothing(tmp_path):
    result = tsstats_cli(env={"XDG_DATA_HOME": str(tmp_path)})
    assert result.returncode == 2 and result.stdout.startswith("usage: tsstats")
    assert "serve" in result.stdout and "export" in result.stdout
    assert list(tmp_path.iterdir()) == []  # no database created
    flags_alone = tsstats_cli("--port", "9000", env={"XDG_DATA_HOME": str(tmp_path)})
    assert flags_alone.returncode == 2 and "name a command before its options" in flags_alone.stderr


def test_each_command_lists_only_its_own_flags_in_its_words():
    serve = tsstats_cli("serve", "--help").stdout
    assert "--sample-hz" in serve and "address to listen on" in serve
    for command in ("export", "backup"):
        text = tsstats_cli(command, "--help").stdout
        assert "--sample-hz" not in text and "--retention-raw" not in text and "--tls-cert" not in text
        assert "where the service is" in text and "address to listen on" not in text
        assert "--url" in text and "--db" in text
    synth = tsstats_cli("synth", "--help").stdout
    assert "--port" not in synth and "--host" not in synth
    for command in ("run", "compare"):  # a client's flags only; and the help renders (a bare % would not)
        shown = tsstats_cli(command, "--help")
        assert shown.returncode == 0 and "--token-file" in shown.stdout and "--sample-hz" not in shown.stdout
