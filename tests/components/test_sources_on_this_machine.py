"""The readers against this machine itself: its procfs, real sockets, psutil beside procfs, and the service
sampling through psutil."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator

import pytest
from support.procfs import read_all

from tsstats.sources.host import ProcfsHostReader, PsutilHostReader, cpu_busy_pct, parse_snmp_curr_estab
from tsstats.sources.latency import ConnectProbe, KernelRttReader


def _proc_fields():
    with open("/proc/meminfo") as handle:
        info = {line.split(":")[0]: int(line.split()[1]) for line in handle}
    with open("/proc/loadavg") as handle:
        load = float(handle.read().split()[0])
    with open("/proc/net/snmp") as handle:
        estab = parse_snmp_curr_estab(handle.read())
    return info, load, estab


def test_real_procfs_agrees_with_proc():
    reading = read_all(ProcfsHostReader())
    info, load, estab = _proc_fields()
    expected_mem = 100.0 * (info["MemTotal"] - info["MemAvailable"]) / info["MemTotal"]
    assert reading.memory_used_pct == pytest.approx(expected_mem, abs=2.0)
    assert reading.load1 == pytest.approx(load, abs=1.0)
    assert abs(reading.tcp_established - estab) <= 2
    assert reading.logical_cpus == os.cpu_count()


@contextlib.contextmanager
def loopback_connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A real TCP connection over loopback: (the client's end, the server's end)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        yield client, accepted
    finally:
        client.close()
        accepted.close()
        server.close()


def test_curr_estab_counts_a_new_connection():
    before = read_all(ProcfsHostReader()).tcp_established
    with loopback_connection():
        assert read_all(ProcfsHostReader()).tcp_established >= before + 2  # both ends are ESTABLISHED


def test_kernel_rtt_reader_sees_a_loopback_connection_only_when_asked():
    remote_before = len(KernelRttReader().read())
    with loopback_connection() as (client, accepted):
        client.sendall(b"ping")
        accepted.recv(4)
        accepted.sendall(b"pong")
        client.recv(4)
        with_loopback = KernelRttReader(include_loopback=True).read()
        assert len(with_loopback) >= 2 and all(0 < rtt < 1000 for rtt in with_loopback)
        assert len(KernelRttReader().read()) == remote_before  # loopback peers are not counted


def test_connect_probe_times_a_real_listener_and_skips_a_closed_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        probe = ConnectProbe([f"127.0.0.1:{server.getsockname()[1]}", f"127.0.0.1:{closed_port}"])
        times = probe.read()
        assert len(times) == 1 and 0 < times[0] < 1000
    finally:
        server.close()


def test_psutil_reader_agrees_with_procfs():
    """Both readers on this machine over the same second: CPU within 5 points, memory within 1 point,
    connections within 10 % (or 2)."""
    procfs, portable = ProcfsHostReader("/proc"), PsutilHostReader()
    first_procfs, first_portable = procfs.read_fast(), portable.read_fast()
    time.sleep(1.0)
    second_procfs, second_portable = procfs.read_fast(), portable.read_fast()
    cpu_procfs = cpu_busy_pct(first_procfs.cpu, second_procfs.cpu)
    cpu_portable = cpu_busy_pct(first_portable.cpu, second_portable.cpu)
    assert cpu_portable == pytest.approx(cpu_procfs, abs=5.0)
    assert portable.read_fast().logical_cpus == procfs.read_fast().logical_cpus
    slow_procfs, slow_portable = procfs.read_slow(), portable.read_slow()
    assert slow_portable.memory_used_pct == pytest.approx(slow_procfs.memory_used_pct, abs=1.0)
    assert abs(slow_portable.tcp_established - slow_procfs.tcp_established) <= max(2, 0.1 * slow_procfs.tcp_established)
    assert slow_portable.load1 == pytest.approx(slow_procfs.load1, abs=0.5)
    assert slow_portable.net_rx_bytes >= 0 and slow_portable.net_tx_bytes >= 0
    procfs.close()


def test_the_service_samples_through_psutil_without_procfs(inprocess, tmp_path):
    service = inprocess(proc_root=str(tmp_path / "no-proc"))
    stats = service.client().get("/api/dashboard/stats").json()
    assert stats["meta"]["sources"]["system"] == "psutil"
    assert 0 < stats["systemMetrics"]["memoryUsage"] < 100
    assert "memoryUsage" not in stats["meta"]["unavailable"] and "systemLoad" not in stats["meta"]["unavailable"]
