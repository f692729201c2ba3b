"""Readers: canned procfs files, the real procfs of this machine, psutil against it, netlink RTTs, and a fake
NVML."""

from __future__ import annotations

import math
import socket
import time

import pytest
from conftest import FakeGpu, fake_nvml, write_stat

from tsstats.sources.host import CpuTimes, HostReader, cpu_busy_pct, open_host_reader, parse_snmp_curr_estab
from tsstats.sources.latency import ConnectProbe, KernelRttReader, LatencyMonitor
from tsstats.sources.nvml import NvmlReader
from tsstats.sources.psutil_host import PsutilHostReader


def test_host_reader_on_canned_files(proc_root):
    reading = HostReader(str(proc_root)).read()
    assert reading.logical_cpus == 4
    assert reading.cpu == CpuTimes(busy=1500, total=10000)
    assert reading.memory_used_pct == pytest.approx(75.0)  # (16e6 - 4e6) / 16e6
    assert reading.load1 == 2.0
    assert reading.tcp_established == 7
    assert (reading.net_rx_bytes, reading.net_tx_bytes) == (1500, 2300)  # loopback excluded
    assert HostReader(str(proc_root)).cpu_model() == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"


def test_cpu_busy_between_two_readings(proc_root):
    reader = HostReader(str(proc_root))
    write_stat(proc_root, busy=100, idle=900)
    first = reader.read().cpu
    write_stat(proc_root, busy=400, idle=1000)  # 300 busy of 400 ticks
    assert cpu_busy_pct(first, reader.read().cpu) == pytest.approx(75.0)
    assert math.isnan(cpu_busy_pct(first, first))


def test_meminfo_without_memavailable(proc_root):
    (proc_root / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n")
    assert HostReader(str(proc_root)).read().memory_used_pct == pytest.approx(50.0)


def _proc_fields():
    with open("/proc/meminfo") as handle:
        info = {line.split(":")[0]: int(line.split()[1]) for line in handle}
    with open("/proc/loadavg") as handle:
        load = float(handle.read().split()[0])
    with open("/proc/net/snmp") as handle:
        estab = parse_snmp_curr_estab(handle.read())
    return info, load, estab


def test_real_procfs_agrees_with_proc():
    reading = HostReader().read()
    info, load, estab = _proc_fields()
    expected_mem = 100.0 * (info["MemTotal"] - info["MemAvailable"]) / info["MemTotal"]
    assert reading.memory_used_pct == pytest.approx(expected_mem, abs=2.0)
    assert reading.load1 == pytest.approx(load, abs=1.0)
    assert abs(reading.tcp_established - estab) <= 2
    import os

    assert reading.logical_cpus == os.cpu_count()


def test_curr_estab_counts_a_new_connection():
    before = HostReader().read().tcp_established
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        assert HostReader().read().tcp_established >= before + 2  # both ends are ESTABLISHED
    finally:
        client.close()
        accepted.close()
        server.close()


def test_kernel_rtt_reader_sees_a_loopback_connection_only_when_asked():
    remote_before = len(KernelRttReader().read())
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    try:
        client.sendall(b"ping")
        accepted.recv(4)
        accepted.sendall(b"pong")
        client.recv(4)
        with_loopback = KernelRttReader(include_loopback=True).read()
        assert len(with_loopback) >= 2 and all(0 < rtt < 1000 for rtt in with_loopback)
        assert len(KernelRttReader().read()) == remote_before  # loopback peers are not counted
    finally:
        client.close()
        accepted.close()
        server.close()


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


def test_latency_monitor_median_and_window():
    now = [100.0]

    class Reader:
        name = "test"
        values = [[1.0, 3.0], [2.0]]

        def read(self):
            return self.values.pop(0)

    monitor = LatencyMonitor(Reader(), window_s=30, clock=lambda: now[0])
    monitor.poll_once()
    now[0] += 10
    monitor.poll_once()
    assert monitor.median_ms() == 2.0
    assert monitor.take_fresh() == 2.0 and math.isnan(monitor.take_fresh())
    now[0] += 25  # the first poll left the 30 s window
    assert monitor.median_ms() == 2.0
    now[0] += 10
    assert math.isnan(monitor.median_ms())


# -- NVML -----------------------------------------------------------------------------------------------
def test_nvml_missing_driver_means_no_gpu():
    reader = NvmlReader(fake_nvml(None, init_fails=True))
    assert reader.start() is False
    assert reader.gpus == [] and "NVML unavailable" in reader.error


def test_nvml_zero_gpus():
    reader = NvmlReader(fake_nvml([]))
    assert reader.start() is False
    assert reader.read() == []


def test_nvml_one_gpu_reads_every_field():
    gpu = FakeGpu(util=42, power_mw=123_456, energy_mj=5_000, temperature=55)
    reader = NvmlReader(fake_nvml([gpu]))
    assert reader.start() and reader.driver_version == "999.99"
    (reading,) = reader.read()
    assert reading.ok
    assert reading.utilization_pct == 42
    assert reading.power_w == pytest.approx(123.456)
    assert reading.energy_counter_j == pytest.approx(5.0)
    assert reading.memory_used_bytes == 1 << 30 and reading.temperature_c == 55


def test_nvml_unsupported_field_is_unavailable_and_not_asked_again():
    gpu = FakeGpu(unsupported={"energy"})
    reader = NvmlReader(fake_nvml([gpu]))
    reader.start()
    for _ in range(3):
        (reading,) = reader.read()
        assert reading.ok and math.isnan(reading.energy_counter_j) and reading.utilization_pct == 50
    assert gpu.calls["energy"] == 1
    assert not reader.energy_supported(0)


def test_nvml_one_failing_gpu_does_not_hide_the_other():
    good, bad = FakeGpu(util=80), FakeGpu(failing=True)
    reader = NvmlReader(fake_nvml([good, bad]))
    assert reader.start()
    first, second = reader.read()
    assert first.ok and first.utilization_pct == 80
    assert not second.ok and math.isnan(second.utilization_pct)
    bad.failing = False  # a transient failure: the card comes back
    assert reader.read()[1].ok


def test_psutil_reader_agrees_with_procfs():
    """Both readers on this machine over the same second: CPU within 5 points, memory within 1 point,
    connections within 10 % (or 2)."""
    procfs, portable = HostReader("/proc"), PsutilHostReader()
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


def test_host_reader_is_chosen_by_what_the_machine_has(tmp_path, proc_root):
    assert open_host_reader(str(proc_root)).name == "procfs"
    assert open_host_reader(str(tmp_path / "no-proc")).name == "psutil"  # as on macOS or Windows


def test_the_service_samples_through_psutil_without_procfs(inprocess, tmp_path):
    service = inprocess(proc_root=str(tmp_path / "no-proc"))
    stats = service.client().get("/api/dashboard/stats").json()
    assert stats["meta"]["sources"]["system"] == "psutil"
    assert 0 < stats["systemMetrics"]["memoryUsage"] < 100
    assert "memoryUsage" not in stats["meta"]["unavailable"] and "systemLoad" not in stats["meta"]["unavailable"]
