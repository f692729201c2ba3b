"""The real server on a free port with a real DuckDB file, driven by a real HTTP client."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from support.answers import error_of
from support.server import ServerProcess

from tsstats.sources.host import cpu_busy_pct, parse_snmp_curr_estab, parse_stat


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("server") / "tsstats.duckdb"
    with ServerProcess(db) as running:
        yield running


@pytest.fixture
def client(server):
    with server.client() as http:
        yield http


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# -- the stats endpoint ---------------------------------------------------------------------------------


def test_stats_on_this_host_are_consistent(server_factory):
    """On the host's own hardware, whatever it is: each figure agrees with the method meta names for it."""
    server = server_factory(host_hardware=True)
    with server.client() as client:
        stats = client.get("/api/dashboard/stats").json()
    meta, system = stats["meta"], stats["systemMetrics"]
    if meta["sources"]["gpu"] == "absent":
        assert system["gpuUsage"] == 0 and "gpuUsage" in meta["unavailable"] and meta["gpus"] == []
    else:
        assert meta["sources"]["gpu"] == "nvml" and 0 <= system["gpuUsage"] <= 100 and meta["gpus"]
    assert meta["sources"]["cpuPower"] in ("rapl", "tdp_model")
    metered = meta["sources"]["cpuPower"] == "rapl" and meta["sources"]["memoryPower"] == "rapl_dram"
    assert ("energyConsumption" in meta["estimated"]) == (not metered)
    assert stats["liveStats"]["energyConsumption"] >= 0

def test_readings_agree_with_proc(client):
    stats = client.get("/api/dashboard/stats").json()
    with open("/proc/meminfo") as handle:
        info = {line.split(":")[0]: int(line.split()[1]) for line in handle}
    memory = 100.0 * (info["MemTotal"] - info["MemAvailable"]) / info["MemTotal"]
    assert stats["systemMetrics"]["memoryUsage"] == pytest.approx(memory, abs=3.0)
    with open("/proc/loadavg") as handle:
        load = float(handle.read().split()[0])
    assert stats["liveStats"]["systemLoad"] == pytest.approx(100.0 * load / os.cpu_count(), abs=60.0 / os.cpu_count())
    with open("/proc/net/snmp") as handle:
        established = parse_snmp_curr_estab(handle.read())
    # the client's own keep-alive connection is counted on both ends; allow for connections opening meanwhile
    assert abs(stats["systemMetrics"]["activeConnections"] - established) <= 4


def read_cpu_times():
    with open("/proc/stat") as handle:
        return parse_stat(handle.read())[0]


def test_cpu_usage_agrees_with_proc_stat_idle_and_burning(server_factory):
    """The stored cpuUsage over a window against /proc/stat read by the test over the same window."""
    server = server_factory("--flush-interval", "0.5s")

    def over_window(client: httpx.Client, seconds: float) -> tuple[float, float]:
        started, before = time.time(), read_cpu_times()
        time.sleep(seconds)
        after, ended = read_cpu_times(), time.time()
        time.sleep(1.5)  # flushed
        history = client.get("/api/history", params={"metrics": "cpuUsage", "from": f"{started:.3f}",
                                                      "to": f"{ended:.3f}", "step": "100ms"}).json()
        values = [value for ts, value in zip(history["timestamps"], history["series"]["cpuUsage"]["avg"],
                                             strict=True)
                  if value is not None and started * 1000 <= ts and ts + 100 <= ended * 1000]
        assert len(values) >= 10 * seconds * 0.5, len(values)  # burners on every core may delay ticks
        return sum(values) / len(values), cpu_busy_pct(before, after)

    with server.client() as client:
        idle_service, idle_proc = over_window(client, 3.0)
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count())]
        try:
            time.sleep(0.5)
            busy_service, busy_proc = over_window(client, 3.0)
        finally:
            for burner in burners:
                burner.kill()
                burner.wait()
    assert idle_service == pytest.approx(idle_proc, abs=10.0), (idle_service, idle_proc)
    assert busy_service == pytest.approx(busy_proc, abs=10.0), (busy_service, busy_proc)
    assert busy_proc > idle_proc or idle_proc >= 95  # the burners did burn, unless the machine was saturated already


def test_body_over_1_mib_is_a_413(client):
    """The size limit is the HTTP server's own, ahead of the app: tested over a real connection."""
    before = client.get("/api/comparisons", params={"limit": 500}).json()["items"]
    huge = client.post("/api/comparisons", content=b'{"models": ["' + b"a" * (1024 * 1024 + 10) + b'"]}',
                       headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert "larger than 1048576 bytes" in error_of(huge)["message"]
    assert client.get("/api/comparisons", params={"limit": 500}).json()["items"] == before


def test_the_whole_page_weighs_under_150_kb_compressed(server):
    """Over a real connection, as a browser fetches it: every asset gzip-encoded, summed on the wire."""
    import re as regex

    page = httpx.get(server.url + "/", headers={"Accept-Encoding": "gzip"})
    assets = regex.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)
    assert len(assets) == 4
    total = 0
    for path in ["/", *assets]:
        with httpx.stream("GET", server.url + path, headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
            wire = b"".join(response.iter_raw())
            assert len(wire) == int(response.headers["content-length"])
            total += len(wire)
    print(f"page weight, compressed: {total} bytes")
    assert total < 150_000, total


def test_a_url_over_8_kb_is_a_413_that_says_so(client):
    response = client.get("/api/comparisons", params={"x": "a" * 9000})
    assert response.status_code == 413
    assert "request line and headers are larger than 8192 bytes" in error_of(response)["message"]


def test_closing_a_thousand_phases_does_not_stop_sampling(server_factory):
    """A run with 1,000 running phases (nested 1,000 deep) ends: its phases close in one write of bounded size
    (one read of the samples, one statement), so the longest gap between samples meanwhile stays within what
    the quiet seconds before show (a relation: a busy host stretches both); it was the whole 4 s write."""
    import os

    server = server_factory("--flush-interval", "0.5s")
    with server.client() as client:
        record = client.post("/api/comparisons", json={"models": ["deep"], "status": "running",
                                                       "pids": [os.getpid()]}).json()
        parent = None
        for number in range(1000):
            body = {"name": f"p{number}", **({"parent": parent} if parent else {})}
            parent = client.post(f"/api/comparisons/{record['id']}/phases", json=body).json()["id"]
        quiet_from = time.time()
        time.sleep(3.0)
        closing = time.time()
        done = client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed"}, timeout=60)
        closed = time.time()
        time.sleep(1.5)  # flushed
        assert done.status_code == 200 and len(done.json()["phases"]) == 1000
        assert {phase["status"] for phase in done.json()["phases"]} == {"completed"}
        export = client.get("/api/export", params={"metrics": "cpuUsage", "from": f"{quiet_from:.3f}",
                                                   "to": f"{closed + 1.0:.3f}", "format": "csv"}).text
    times = [datetime.fromisoformat(line.split(",")[0]).timestamp() for line in export.strip().splitlines()[1:]]
    gaps = [(later - earlier, later) for earlier, later in zip(times, times[1:], strict=False)]
    quiet = max(gap for gap, at in gaps if at < closing)
    during = max(gap for gap, at in gaps if at >= closing)
    assert during <= max(1.0, 5 * quiet), (during, quiet, closed - closing)


def test_two_writers_at_once_do_not_stop_sampling(server_factory):
    """Two clients POST comparisons back to back for 4 s: sampling keeps the rate it has without them (a relation
    with the 4 s just before, on the same machine: a busy CI host slows both), and health stays ok."""
    import threading

    server = server_factory("--flush-interval", "0.5s")
    stop = threading.Event()
    written = []

    def writer() -> None:
        with server.client() as client:
            while not stop.is_set():
                written.append(client.post("/api/comparisons", json={"models": ["a", "b"]}).status_code)

    def samples_between(start: float, end: float) -> int:
        """The samples stored in [start, end): the rows of a raw export (a count, not buckets that a tick a
        few ms late leaves empty)."""
        with server.client() as client:
            export = client.get("/api/export", params={"metrics": "cpuUsage", "from": f"{start:.3f}",
                                                       "to": f"{end:.3f}", "format": "csv"})
        assert export.status_code == 200, export.text
        return len(export.text.strip().splitlines()) - 1  # the header

    quiet_from = time.time()
    time.sleep(4.0)
    started = time.time()
    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(4.0)
    with server.client() as client:
        health = client.get("/healthz")
    stop.set()
    for thread in threads:
        thread.join(15)
    ended = time.time()
    time.sleep(1.5)  # flushed
    quiet = samples_between(quiet_from + 0.5, started - 0.5)
    loaded = samples_between(started + 0.5, ended - 0.5)
    assert len(written) > 100 and set(written) == {201}
    assert health.status_code == 200, health.text
    quiet_rate, loaded_rate = quiet / (started - quiet_from - 1.0), loaded / (ended - started - 1.0)
    assert quiet_rate > 0 and loaded_rate >= 0.9 * quiet_rate, (quiet, loaded)


def test_stream_sends_stats_events(server):
    with httpx.stream("GET", server.url + "/api/dashboard/stream", timeout=10.0) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = []
        lines = response.iter_lines()
        started = time.monotonic()
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
                if len(events) == 2:
                    break
        elapsed = time.monotonic() - started
    assert len(events) == 2 and set(events[1]) >= {"systemMetrics", "liveStats", "meta"}
    assert events[0]["meta"]["generatedAt"] < events[1]["meta"]["generatedAt"]
    assert elapsed < 5


# -- comparisons ----------------------------------------------------------------------------------------


# -- bad input ------------------------------------------------------------------------------------------


# -- operations -----------------------------------------------------------------------------------------


# -- life cycle, security -------------------------------------------------------------------------------
def test_non_loopback_host_needs_a_token_or_a_flag(server_factory):
    refused = server_factory("--host", "0.0.0.0", start=False)
    refused.start(wait=False)
    code = refused.process.wait(15)
    output = refused.process.stdout.read()
    assert code != 0 and "refusing to listen on 0.0.0.0" in output and "--allow-remote" in output
    allowed = server_factory("--host", "0.0.0.0", "--allow-remote")
    assert httpx.get(allowed.url + "/healthz").status_code == 200


def test_second_server_on_the_same_file_exits_at_once(server_factory, tmp_path):
    first = server_factory()
    second = server_factory(db=first.db, start=False)
    started = time.monotonic()
    second.start(wait=False)
    code = second.process.wait(20)
    output = second.process.stdout.read()
    assert code != 0 and time.monotonic() - started < 15
    assert str(first.db) in output and "in use" in output
    assert f"PID {first.process.pid}" in output
    assert httpx.get(first.url + "/healthz").status_code == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_restart_keeps_every_comparison(server_factory, tmp_path, sig):
    db = tmp_path / f"restart-{sig}.duckdb"
    server = server_factory(db=db)
    with server.client() as client:
        ids = [client.post("/api/comparisons", json={"models": ["a", f"b{i}"]}).json()["id"] for i in range(3)]
        client.patch(f"/api/comparisons/{ids[0]}", json={"status": "running"})
        client.post("/api/offsets", json={"kg": 1.25})
        before = client.get("/api/comparisons", params={"limit": 500}).json()
    assert server.stop(sig) == 0, server.output
    assert "samples flushed and checkpointed" in server.output
    if sig == signal.SIGHUP:
        assert "SIGHUP: stopping as on SIGTERM" in server.output
    again = server_factory(db=db)
    with again.client() as client:
        after = client.get("/api/comparisons", params={"limit": 500}).json()
        assert after == before
        stats = client.get("/api/dashboard/stats").json()
        assert stats["liveStats"]["activeComparisons"] == 1 and stats["liveStats"]["queueLength"] == 2
        assert stats["sustainability"]["carbonOffset"] == 1.25
        new = client.post("/api/comparisons", json={"models": ["c"]}).json()
        assert new["id"] > max(ids)


def test_first_answer_after_start_is_a_200(server_factory):
    """Polled from the moment of exec, the service answers nothing before its stats exist, then 200."""
    server = server_factory(start=False)
    server.start(wait=False)
    statuses = []
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=10) as http:
        while time.monotonic() < deadline and not statuses:
            try:
                statuses.append(http.get(server.url + "/api/dashboard/stats").status_code)
            except httpx.TransportError:
                time.sleep(0.005)
        statuses += [http.get(server.url + "/api/dashboard/stats").status_code for _ in range(3)]
    assert statuses == [200] * 4


def test_stats_are_built_only_when_asked(server_factory):
    server = server_factory()
    with server.client() as client:
        client.get("/api/dashboard/stats")
        before = client.get("/healthz").json()["stats"]["builds"]
        time.sleep(2.5)  # nobody polls: no build, however many update intervals pass
        assert client.get("/healthz").json()["stats"]["builds"] == before
        for _ in range(5):
            client.get("/api/dashboard/stats")  # within one update interval: one build serves them all
        assert client.get("/healthz").json()["stats"]["builds"] == before + 1


def test_kill_9_loses_at_most_the_last_flush(server_factory, tmp_path):
    db = tmp_path / "crash.duckdb"
    server = server_factory(db=db)
    with server.client() as client:
        created = client.post("/api/comparisons", json={"models": ["a"]}).json()
        offset = client.post("/api/offsets", json={"kg": 0.5}).json()
    time.sleep(6.5)  # past the first 5 s flush
    killed_at = time.time() * 1000
    server.process.kill()
    server.process.wait()
    again = server_factory(db=db)
    with again.client() as client:
        assert client.get(f"/api/comparisons/{created['id']}").json() == created  # committed before the 201
        assert client.get("/api/offsets").json()["items"] == [offset]
    import duckdb

    again.stop()
    con = duckdb.connect(str(db), read_only=True)
    last = con.execute("SELECT max(ts_ms) FROM samples WHERE ts_ms < ?", [killed_at]).fetchone()[0]
    con.close()
    assert killed_at - last < 5000 + 500  # flush every 5 s: at most the last flush (and a tick) is lost


@pytest.mark.parametrize("phase", ["open", "before_start", "after_start", "arming", "armed", "serving"])
def test_a_sigterm_at_each_moment_of_the_start_up_is_never_lost(tmp_path, phase):
    """SIGTERM at each moment of the start-up (support/stop_at.py sends it from inside the process, so each moment
    is hit every time, not by a race): each run flushes, checkpoints and exits 0."""
    from support.server import fake_hardware_env, free_port

    tests = str(Path(__file__).parents[1])
    env = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
    hardware = fake_hardware_env()
    env.update(hardware, PYTHONPATH=os.pathsep.join([tests, hardware["PYTHONPATH"]]), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "support.stop_at", phase, "serve", "--db",
                                str(tmp_path / "early.duckdb"), "--port", str(free_port()), "--powercap-root",
                                str(tmp_path / "none")], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:  # a lost signal: the test fails, the process goes
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"{phase}: exit {process.returncode}\n{output[-2000:]}"
    assert "SIGTERM: stopping" in output and "samples flushed and checkpointed" in output, output[-2000:]


def test_busy_port_is_a_clear_error(tmp_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        server = ServerProcess(tmp_path / "busy.duckdb", port=port)
        server.start(wait=False)
        code = server.process.wait(30)
        output = server.process.stdout.read()
    finally:
        holder.close()
    assert code != 0
    assert f"cannot listen on 127.0.0.1:{port}" in output, output[-2000:]
    assert "Traceback" not in output, output[-2000:]


def test_files_are_private_whatever_the_umask(tmp_path):
    """The database, its WAL and its directory are the owner's alone even under umask 022; another local user
    cannot copy the WAL to read a comparison's metadata."""
    directory = tmp_path / "made" / "here"
    server = ServerProcess(directory / "private.duckdb", "--flush-interval", "0.2s")
    server.process = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", *server.args], env=server.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      preexec_fn=lambda: os.umask(0o022))
    server.wait_ready()
    try:
        with server.client() as client:
            client.post("/api/comparisons", json={"models": ["secret"], "metadata": {"key": "v"}})
        time.sleep(0.5)
        for path in directory.iterdir():
            assert path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))
        assert directory.stat().st_mode & 0o777 == 0o700
    finally:
        server.stop()


def test_a_request_without_a_host_is_refused(server):
    """HTTP/1.0 without Host, as a rebinding page cannot send but a careless client might: 421, like a
    foreign one."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(b"GET /api/backup HTTP/1.0\r\n\r\n")
        answer = connection.recv(4096).decode("latin-1")
    assert answer.startswith("HTTP/1.1 421") or answer.startswith("HTTP/1.0 421"), answer[:200]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as connection:
        connection.sendall(b"GET /api/backup HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        answer = connection.recv(4096).decode("latin-1")
    assert " 421 " in answer.splitlines()[0] and "tsstats_backup" not in answer


def test_start_up_removes_what_a_crash_left_of_an_export(server_factory, tmp_path):
    ours = tmp_path / ".tsstats-out-tsstats.duckdb-k3j2.csv"
    another_database = tmp_path / ".tsstats-out-other.duckdb-k3j2.csv"  # another service's, maybe in use
    for path in (ours, another_database):
        path.write_bytes(b"time_utc,cpuUsage_pct\n" * 1000)
    server = server_factory(db=tmp_path / "tsstats.duckdb")
    with server.client() as client:
        assert client.get("/healthz").status_code == 200
        exported = client.get("/api/export", params={"from": "-1m", "format": "csv"})
    assert exported.status_code == 200 and exported.text.startswith("time_utc,")
    assert not ours.exists() and another_database.exists()
    deadline = time.monotonic() + 10  # the export's own scratch file goes once its last chunk is sent
    while list(tmp_path.glob(".tsstats-out-tsstats.duckdb-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(tmp_path.glob(".tsstats-out-tsstats.duckdb-*"))


def test_an_export_cut_short_leaves_nothing_even_when_the_service_stops_at_once(tmp_path):
    """A client goes away during a large export and the service is stopped right after, while the read thread
    may still be writing the scratch file: once the service has exited nothing is left beside the database."""
    from support import old_files

    hour = 3_600_000
    db = tmp_path / "big.duckdb"
    old_files.build(db, 5, days=1, comparisons=10, start_ms=(int(time.time() * 1000) // hour - 24) * hour)
    for delay in (0.1, 0.5):
        server = ServerProcess(db).start()
        try:
            # the export is written whole before its first byte: the client gives up on the answer after `delay`
            # and goes away, the handler is cancelled, and the read thread writes on
            with httpx.Client(base_url=server.url, timeout=httpx.Timeout(30, read=delay)) as client, \
                    pytest.raises(httpx.ReadTimeout):
                client.get("/api/export", params={"from": "-1d", "format": "csv"})
            code = server.stop(signal.SIGTERM)
        finally:
            server.stop(signal.SIGKILL)
        assert code == 0, server.output[-2000:]
        assert not list(tmp_path.glob(".tsstats-out-*")), (delay, sorted(p.name for p in tmp_path.iterdir()))


def test_each_log_line_is_written_once(tmp_path):
    """Sanic's lines and tsstats' go through one handler, to stderr: none is repeated on stdout."""
    server = ServerProcess(tmp_path / "logs.duckdb")
    server.process = subprocess.Popen([sys.executable, "-m", "tsstats", "serve", *server.args], env=server.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server.wait_ready()
        server.process.send_signal(signal.SIGTERM)
        out, err = server.process.communicate(timeout=30)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()
    messages = [line.split(": ", 1)[1] for line in err.splitlines() if ": " in line]
    assert any("Worker ready" in message for message in messages)  # Sanic's own line, once
    assert any("samples flushed and checkpointed" in message for message in messages)
    assert len(messages) == len(set(messages)), err
    assert out == ""


def test_uptime_reflects_a_restart_at_once(server_factory, tmp_path):
    """The gap since the last run counts from the first answer after a restart, not from the first flush."""
    db = tmp_path / "uptime.duckdb"
    first = server_factory("--flush-interval", "0.5s", db=db)
    time.sleep(2.0)
    assert first.stop() == 0
    time.sleep(6.0)  # stopped: down time
    again = server_factory("--flush-interval", "60s", db=db)  # nothing flushed while this test looks
    with again.client() as client:
        live = client.get("/api/dashboard/stats").json()["liveStats"]
    assert live["uptime"] < 80, live  # about 2 s sampled in 8 s
    assert live["uptime"] == round(live["uptime"], 2)


def rate_scraped(client) -> float:
    """``tsstats_sample_rate_hertz`` from /metrics (a scrape does not raise the rate)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("tsstats_sample_rate_hertz "):
            return float(line.split()[1])
    raise AssertionError("no tsstats_sample_rate_hertz in /metrics")


def test_unpolled_it_samples_at_the_idle_rate_and_the_first_request_raises_it(server_factory):
    """Nobody asks (the start-up waits on /healthz, the scrapes do not count): 1 sample a second. The first
    request for the stats raises the rate at once, and the stats it gets say so and why; history says the rate
    of each stretch."""
    server = server_factory("--idle-sample-hz", "1")
    with server.client() as client:
        deadline = time.monotonic() + 10
        while rate_scraped(client) != 1.0:
            assert time.monotonic() < deadline, "the sampler never went down to its idle rate"
            time.sleep(0.1)
        time.sleep(3.0)  # a stretch at the idle rate
        sampling = client.get("/api/dashboard/stats").json()["meta"]["sampling"]
        assert sampling == {"hz": 10.0, "fullHz": 10.0, "idleHz": 1.0, "fullBecause": ["asked"]}
        assert rate_scraped(client) == 10.0
        time.sleep(1.0)
        history = client.get("/api/history", params={"metrics": "sampleInterval", "from": "-4s", "step": "1s"}).json()
        means = [value for value in history["series"]["sampleInterval"]["avg"] if value is not None]
        assert [mean for mean in means if abs(mean - 1.0) < 0.05] and means[-1] == pytest.approx(0.1, abs=0.02)
