"""Export, backup and the systemd unit, from the command line as a user runs them: against a database file,
and through a running service that holds the file."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from support.disks import small_tmpfs
from support.server import fake_hardware_env, run_cli

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def tsstats(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def history_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("data") / "history.duckdb"
    result = tsstats("synth", "--days", "0.2", "--hz", "1", "--gpus", "1", "--db", str(db))
    assert result.returncode == 0, result.stderr
    return db


def partials(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".partial")]


def test_export_parquet_opens_with_timestamps_and_numbers(history_db, tmp_path):
    out = tmp_path / "raw.parquet"
    result = tsstats("export", "--db", str(history_db), "--from", "-1d", "--format", "parquet", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"rows (raw, parquet) from {history_db} to" in result.stdout and result.stderr == ""  # no bar on a pipe
    types = dict(duckdb.sql(f"DESCRIBE SELECT * FROM '{out}'").fetchall() and
                 [(row[0], row[1]) for row in duckdb.sql(f"DESCRIBE SELECT * FROM '{out}'").fetchall()])
    assert types["time_utc"] == "TIMESTAMP" and types["cpuUsage_pct"] == "DOUBLE"
    assert types["activeConnections_count"] in ("DOUBLE", "INTEGER", "BIGINT") and types["energy_J"] == "DOUBLE"
    rows = duckdb.sql(f"SELECT count(*), min(cpuUsage_pct), max(cpuUsage_pct) FROM '{out}'").fetchall()[0]
    assert 0.19 * 86400 < rows[0] <= 0.2 * 86400 + 1 and 0 <= rows[1] <= rows[2] <= 100
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert str(table.schema.field("time_utc").type).startswith("timestamp")
    assert str(table.schema.field("cpuUsage_pct").type) == "double" and table.num_rows == rows[0]
    assert partials(tmp_path) == []


def test_export_through_the_service_equals_history(history_db, server_factory, tmp_path):
    """While a service holds the file, export goes through it; its 1-minute averages equal /api/history's."""
    db = tmp_path / "served.duckdb"
    shutil.copy(history_db, db)
    server = server_factory(db=db)
    out = tmp_path / "minutes.csv"
    result = tsstats("export", "--db", str(db), "--port", str(server.port), "--from", "-3h", "--to", "-1h",
                     "--tier", "1m", "--metrics", "cpuUsage,gpu0Power,energy", "--format", "csv", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "through the service" in result.stdout
    exported = duckdb.sql(f"SELECT epoch_ms(time_utc), cpuUsage_avg_pct, gpu0Power_avg_W FROM '{out}' "
                          "ORDER BY 1").fetchall()
    assert len(exported) >= 110
    start, end = exported[0][0], exported[-1][0] + 60_000
    with server.client() as client:
        history = client.get("/api/history", params={"metrics": "cpuUsage,gpu0Power", "from": f"{start / 1000}",
                                                     "to": f"{end / 1000 - 0.001}", "step": "1m"}).json()
    assert history["tier"] == "1m" and history["timestamps"] == [row[0] for row in exported]
    for row, cpu, power in zip(exported, history["series"]["cpuUsage"]["avg"], history["series"]["gpu0Power"]["avg"],
                               strict=True):
        assert row[1] == pytest.approx(cpu, rel=1e-9) and row[2] == pytest.approx(power, rel=1e-9)


@pytest.mark.parametrize("args, message", [
    (["--from", "yesterday"], "from: 'yesterday' is not RFC 3339"),
    (["--metrics", "cpuUsage,bogus"], "metrics: unknown metric 'bogus'"),
    (["--to", "2027-13-40T00:00:00Z"], "to:"),
])
def test_export_bad_input_names_the_problem(history_db, tmp_path, args, message):
    out = tmp_path / "x.csv"
    result = tsstats("export", "--db", str(history_db), "--format", "csv", "--out", str(out), *args)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert not out.exists() and partials(tmp_path) == []


def test_export_and_backup_refuse_bad_destinations(history_db, tmp_path):
    existing = tmp_path / "exists.csv"
    existing.write_text("keep me")
    for command in (["export", "--format", "csv"], ["backup"]):
        result = tsstats(*command, "--db", str(history_db), "--out", str(existing))
        assert result.returncode != 0 and "exists; pass --force" in result.stderr
        assert existing.read_text() == "keep me"
        result = tsstats(*command, "--db", str(history_db), "--out", str(tmp_path / "missing" / "x"))
        assert result.returncode != 0 and "does not exist" in result.stderr
        result = tsstats(*command, "--db", str(history_db), "--out", str(tmp_path))
        assert result.returncode != 0 and "is a directory" in result.stderr
    result = tsstats("export", "--db", str(history_db), "--format", "csv", "--out", str(existing), "--force")
    assert result.returncode == 0 and existing.read_text().startswith("time_utc,")
    result = tsstats("backup", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "b.duckdb"))
    assert result.returncode != 0 and "no database at" in result.stderr
    assert partials(tmp_path) == []


def test_export_to_standard_output(history_db):
    csv_out = tsstats("export", "--db", str(history_db), "--from", "-1h", "--out", "-")
    assert csv_out.returncode == 0, csv_out.stderr
    lines = csv_out.stdout.splitlines()
    assert lines[0].startswith("time_utc,cpuUsage_pct,") and 3000 < len(lines) <= 3602
    assert "to standard output" in csv_out.stderr
    numbers = [cell for line in lines[1:] for cell in line.split(",")[1:] if cell]
    assert numbers and max(len(cell.lstrip("-").replace(".", "").strip("0")) for cell in numbers) <= 10  # no noise
    parquet = subprocess.run([sys.executable, "-m", "tsstats", "export", "--db", str(history_db), "--from", "-1h",
                              "--out", "-", "--format", "parquet"], capture_output=True, timeout=300,
                             env={**os.environ, **fake_hardware_env()})
    assert parquet.returncode == 0 and parquet.stdout[:4] == b"PAR1" and parquet.stdout[-4:] == b"PAR1"
    backup = tsstats("backup", "--db", str(history_db), "--out", "-")
    assert backup.returncode == 2 and "a backup is a database file" in backup.stderr and backup.stdout == ""


def test_the_format_follows_the_file_name_and_a_contradiction_is_refused(history_db, tmp_path):
    parquet = tmp_path / "by-name.parquet"
    assert tsstats("export", "--db", str(history_db), "--from", "-1h", "--out", str(parquet)).returncode == 0
    assert parquet.read_bytes()[:4] == b"PAR1"
    csv = tmp_path / "by-name.CSV"
    assert tsstats("export", "--db", str(history_db), "--from", "-1h", "--out", str(csv)).returncode == 0
    assert csv.read_text().startswith("time_utc,")
    contradiction = tsstats("export", "--db", str(history_db), "--format", "parquet", "--out", str(tmp_path / "f.csv"))
    assert contradiction.returncode == 2 and "--format parquet contradicts --out" in contradiction.stderr
    unknown = tsstats("export", "--db", str(history_db), "--out", str(tmp_path / "f.txt"))
    assert unknown.returncode == 2 and "pass --format csv or --format parquet" in unknown.stderr
    assert not (tmp_path / "f.csv").exists() and not (tmp_path / "f.txt").exists()


def test_one_directory_rule_for_synth_export_and_backup(history_db, tmp_path):
    missing = tmp_path / "missing"
    for command in (["synth", "--days", "0.01", "--db", str(missing / "s.duckdb")],
                    ["export", "--db", str(history_db), "--out", str(missing / "e.csv")],
                    ["backup", "--db", str(history_db), "--out", str(missing / "b.duckdb")]):
        result = tsstats(*command)
        assert result.returncode == 2 and f"the directory {missing} does not exist" in result.stderr, command
    assert not missing.exists()


def test_a_date_alone_is_midnight_utc_and_messages_say_times_in_rfc_3339(history_db, tmp_path):
    today = time.strftime("%Y-%m-%d", time.gmtime())
    by_date, by_time = tmp_path / "date.csv", tmp_path / "time.csv"
    assert tsstats("export", "--db", str(history_db), "--from", today, "--out", str(by_date)).returncode == 0
    assert tsstats("export", "--db", str(history_db), "--from", f"{today}T00:00:00Z", "--to", "now",
                   "--out", str(by_time)).returncode == 0
    assert by_date.read_text().splitlines()[0] == by_time.read_text().splitlines()[0]
    assert abs(len(by_date.read_text().splitlines()) - len(by_time.read_text().splitlines())) <= 2
    naive = tsstats("export", "--db", str(history_db), "--from", f"{today}T10:00:00", "--out", str(tmp_path / "n.csv"))
    assert naive.returncode == 2 and "has no time zone" in naive.stderr
    again = tsstats("synth", "--days", "0.01", "--db", str(history_db))
    assert again.returncode == 1 and re.search(r"samples up to \d{4}-\d\d-\d\dT[0-9:.]+Z", again.stderr)
    assert not re.search(r"\d{12,} ms", again.stderr)


def test_the_same_mistake_reads_and_exits_the_same_through_the_service(history_db, server_factory, tmp_path):
    db = tmp_path / "same.duckdb"
    shutil.copy(history_db, db)
    from_file = tsstats("export", "--db", str(db), "--from", "yesterday", "--out", str(tmp_path / "a.csv"))
    server = server_factory(db=db)
    through = tsstats("export", "--db", str(db), "--port", str(server.port), "--from", "yesterday",
                      "--out", str(tmp_path / "b.csv"))
    assert from_file.returncode == through.returncode == 2
    assert from_file.stderr == through.stderr
    assert from_file.stderr.count("from:") == 1  # one prefix, not "from: from:"


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (needs root, as CI runs)."""
    with small_tmpfs(tmp_path / "tiny", "256k") as mount:
        yield mount


def test_a_full_disk_fails_cleanly(history_db, tiny_disk):
    for command in (["export", "--format", "parquet"], ["backup"]):
        out = tiny_disk / "out"
        result = tsstats(*command, "--db", str(history_db), "--out", str(out))
        assert result.returncode == 1, result.stdout
        assert "failed, nothing written" in result.stderr and "No space left" in result.stderr
        assert os.listdir(tiny_disk) == []


def test_backup_of_a_running_service_serves_the_same_data(history_db, server_factory, tmp_path):
    db = tmp_path / "live.duckdb"
    shutil.copy(history_db, db)
    server = server_factory(db=db)
    with server.client() as client:
        for name in ("first", "second"):
            client.post("/api/comparisons", json={"models": ["a", "b"], "name": name})
        comparisons = client.get("/api/comparisons").json()
        history = client.get("/api/history", params={"metrics": "cpuUsage,gpu0Usage", "from": "-3h", "to": "-1h",
                                                     "step": "10m"}).json()
    out = tmp_path / "copy.duckdb"
    result = tsstats("backup", "--db", str(db), "--port", str(server.port), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "through the service at http://127.0.0.1" in result.stdout
    copy = server_factory(db=out)
    with copy.client() as client:
        assert client.get("/api/comparisons").json() == comparisons
        again = client.get("/api/history", params={"metrics": "cpuUsage,gpu0Usage", "from": str(history["from"] / 1000),
                                                   "to": str(history["to"] / 1000), "step": "10m"}).json()
        assert again["series"] == history["series"]
        assert client.post("/api/comparisons", json={"models": ["c"]}).json()["id"] == 3  # the sequence goes on
    stopped = tmp_path / "stopped.duckdb"
    held = tsstats("backup", "--db", str(out), "--out", str(stopped))  # held: through the copy's server
    assert held.returncode == 0 and f"through the service at {copy.url}" in held.stdout
    stopped.unlink()
    copy.stop()
    result = tsstats("backup", "--db", str(out), "--out", str(stopped))
    assert result.returncode == 0 and "backed up" in result.stdout
    assert duckdb.connect(str(stopped), read_only=True).execute("SELECT count(*) FROM comparisons").fetchone()[0] == 3


# -- the systemd unit ---------------------------------------------------------------------------------------
def verify(unit: Path, user: bool, tmp_path: Path) -> subprocess.CompletedProcess:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run([SYSTEMD_ANALYZE, *(["--user"] if user else []), "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="scripts/test.sh installs systemd (systemd-analyze)")
@pytest.mark.parametrize("scope", ["--user", "--system"])
def test_the_unit_passes_systemd_analyze_verify(tmp_path, scope):
    printed = tsstats("install-service", scope, "--print")
    assert printed.returncode == 0, printed.stderr
    text = printed.stdout
    for line in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                 "ReadWritePaths=%S/tsstats", "StateDirectory=tsstats"):
        assert line in text.splitlines(), line
    assert "serve --db %S/tsstats/tsstats.duckdb" in text
    unit = tmp_path / "tsstats.service"
    unit.write_text(text)
    checked = verify(unit, scope == "--user", tmp_path)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout + checked.stderr
    unit.write_text(text.replace("ProtectSystem=strict", "ProtectSystm=strict"))  # the check can fail
    assert "Unknown key" in verify(unit, scope == "--user", tmp_path).stderr


def test_install_and_uninstall_for_a_user(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    result = tsstats("install-service", "--user", env=env)
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "config" / "systemd" / "user" / "tsstats.service"
    assert unit.read_text().startswith("[Unit]") and "systemctl --user daemon-reload" in result.stdout
    result = tsstats("uninstall-service", "--user", env=env)
    assert result.returncode == 0 and not unit.exists() and "disable --now" in result.stdout
    assert "nothing removed" in tsstats("uninstall-service", "--user", env=env).stdout


def test_install_passes_settings_on_to_the_unit(tmp_path):
    printed = tsstats("install-service", "--print", "--port", "9000", "--grid-region", "fra", "--allow-remote")
    assert printed.returncode == 0, printed.stderr
    command = next(line for line in printed.stdout.splitlines() if line.startswith("ExecStart="))
    assert command.endswith("serve --db %S/tsstats/tsstats.duckdb --port 9000 --allow-remote --grid-region fra")
    config = tmp_path / "tsstats.toml"
    config.write_text('port = 9100\n')
    with_config = tsstats("install-service", "--print", "--config", str(config))
    assert f"--config {config}" in with_config.stdout
    if str(config).startswith(("/tmp/", "/var/tmp/")):  # pytest's directory: PrivateTmp hides it from the unit
        assert f"warning: {config} is under /" in with_config.stderr and "PrivateTmp=yes" in with_config.stderr


def test_install_refuses_settings_serve_would_refuse(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    refused = tsstats("install-service", "--grid-region", "XYZ", env=env)
    assert refused.returncode == 1 and "would refuse to start: unknown grid region 'XYZ'" in refused.stderr
    bad = tsstats("install-service", "--port", "http", env=env)
    assert bad.returncode == 2 and "--port: expected an integer" in bad.stderr
    assert not (tmp_path / "config" / "systemd" / "user" / "tsstats.service").exists()
    help_text = tsstats("install-service", "--help").stdout
    assert "--db DB" not in help_text and "--token TOKEN" not in help_text and "--port PORT" in help_text


def test_install_without_rights_says_what_to_run(tmp_path):
    config = tmp_path / "config"
    (config / "systemd" / "user").mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(config / "systemd" / "user")],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a read-only tmpfs needs root")
    try:
        result = tsstats("install-service", "--user", env={"XDG_CONFIG_HOME": str(config)})
    finally:
        subprocess.run(["umount", str(config / "systemd" / "user")], check=True)
    assert result.returncode == 1 and "no permission to write" in result.stderr
    assert "run `sudo " in result.stderr and "install-service --user" in result.stderr


def test_comparisons_export_from_the_file_and_through_the_service(server_factory, tmp_path):
    """One row a comparison with the host, per-item figures and phases, in Parquet and CSV, the same from the file
    as through the service that holds it."""
    db = tmp_path / "runs.duckdb"
    server = server_factory(db=db)
    with server.client() as client:
        cid = client.post("/api/comparisons", json={"models": ["a", "b"], "status": "running", "items": 50}).json()
        client.post(f"/api/comparisons/{cid['id']}/phases", json={"name": "warm-up"})
        time.sleep(0.2)
        client.patch(f"/api/comparisons/{cid['id']}", json={"status": "completed", "accuracy": 71.0})
        client.post("/api/comparisons", json={"name": "queued one"})
    through = tmp_path / "through.parquet"
    result = tsstats("export", "--comparisons", "--db", str(db), "--port", str(server.port), "--format", "parquet",
                     "--out", str(through))
    assert result.returncode == 0 and "through the service" in result.stdout, result.stderr
    rows = duckdb.sql(f"SELECT host, name, models, status, items, energy_J, energy_per_item_J, accuracy_pct, "
                      f"phases_json FROM '{through}' ORDER BY id").fetchall()
    assert [row[1] for row in rows] == ["a vs b", "queued one"] and rows[0][2] == ["a", "b"]
    host, _, _, status, items, energy, per_item, accuracy, phases = rows[0]
    assert host == socket.gethostname() and status == "completed" and items == 50 and accuracy == 71.0
    assert energy > 0 and per_item == pytest.approx(energy / 50)
    assert [phase["name"] for phase in json.loads(phases)] == ["warm-up"]
    assert server.stop() == 0
    from_file = tmp_path / "file.csv"
    result = tsstats("export", "--comparisons", "--db", str(db), "--format", "csv", "--out", str(from_file))
    assert result.returncode == 0 and "2 comparisons" in result.stdout, result.stderr
    csv_rows = duckdb.sql(f"SELECT models, energy_J FROM read_csv('{from_file}') ORDER BY id").fetchall()
    assert csv_rows[0][0] == "a;b" and csv_rows[0][1] == pytest.approx(energy)
    bad = tsstats("export", "--comparisons", "--metrics", "cpuUsage", "--db", str(db), "--format", "csv", "--out",
                  str(tmp_path / "x.csv"))
    assert bad.returncode == 2 and "--comparisons exports comparisons" in bad.stderr


def test_the_system_unit_is_hardened_to_an_ok_exposure(tmp_path):
    """The system unit runs as a user of its own, with no capability, UMask 0077 and a descriptor limit for
    its connections; systemd's own assessment reads OK or better (at most 4.9)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("scripts/test.sh installs systemd")
    unit = tmp_path / "tsstats.service"
    printed = tsstats("install-service", "--system", "--print", "--token-file", "/etc/tsstats/token")
    assert printed.returncode == 0, printed.stderr
    unit.write_text(printed.stdout)
    for line in ("DynamicUser=yes", "UMask=0077", "CapabilityBoundingSet=\n", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "LimitNOFILE=8192", "LoadCredential=token:/etc/tsstats/token"):
        assert line in printed.stdout, line
    assert "--token-file %d/token" in printed.stdout and "TSSTATS_TOKEN=" not in printed.stdout
    assessed = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True,
                              text=True, timeout=60)
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", assessed.stdout).group(1))
    assert score <= 4.9, assessed.stdout[-500:]


def test_an_export_that_would_not_fit_is_refused_with_507_and_leaves_nothing(history_db, server_factory, tmp_path):
    with small_tmpfs(tmp_path / "small", "20m") as mount:
        db = mount / "live.duckdb"
        shutil.copy(history_db, db)
        server = server_factory(db=db)
        try:
            with server.client() as client:
                big = client.get("/api/export", params={"from": "-1d"})  # about 4 MiB of CSV
                assert big.status_code == 507, big.text
                message = big.json()["error"]["message"]
                assert re.search(r"the export would take about [0-9.]+ MiB and [0-9.]+ MiB are free in ", message)
                small = client.get("/api/export", params={"metrics": "cpuUsage", "from": "-10m"})
                assert small.status_code == 200 and small.text.startswith("time_utc,"), small.text[:200]
        finally:
            server.stop()
        assert not [name for name in os.listdir(mount) if name.startswith(".tsstats-out-")]


def test_export_and_backup_take_the_token_from_a_file_and_serve_warns_of_a_token_flag(server_factory, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("file-tøken\n", encoding="utf-8")
    token_file.chmod(0o600)
    server = server_factory(db=tmp_path / "guarded.duckdb", env={"TSSTATS_TOKEN_FILE": str(token_file)})
    out = tmp_path / "runs.csv"
    exported = tsstats("export", "--comparisons", "--port", str(server.port), "--token-file", str(token_file),
                       "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.read_text().startswith("host,id,")
    backed_up = tsstats("backup", "--port", str(server.port), "--out", str(tmp_path / "copy.duckdb"),
                        env={"TSSTATS_TOKEN_FILE": str(token_file)})
    assert backed_up.returncode == 0, backed_up.stderr
    refused = tsstats("backup", "--port", str(server.port), "--out", str(tmp_path / "no.duckdb"))
    assert refused.returncode == 1 and "401" in refused.stderr
    flagged = server_factory("--token", "on-the-command-line", db=tmp_path / "flagged.duckdb")
    flagged.stop()
    assert "--token puts the token on the command line" in flagged.output and "token_file" in flagged.output
