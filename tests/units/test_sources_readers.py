"""The readers of the machine on canned files and fake modules: procfs parsing, the latency monitor's window,
NVML's quirks, and which host reader a machine gets."""

from __future__ import annotations

import math

import pytest
from support.nvml import FakeGpu, fake_nvml
from support.procfs import read_all, write_stat

from tsstats.assembly import open_host_reader
from tsstats.sources.gpu import NvmlReader
from tsstats.sources.host import CpuTimes, ProcfsHostReader, cpu_busy_pct
from tsstats.sources.latency import LatencyMonitor


def test_host_reader_on_canned_files(proc_root):
    reading = read_all(ProcfsHostReader(str(proc_root)))
    assert reading.logical_cpus == 4
    assert reading.cpu == CpuTimes(busy=1500, total=10000)
    assert reading.memory_used_pct == pytest.approx(75.0)  # (16e6 - 4e6) / 16e6
    assert reading.load1 == 2.0
    assert reading.tcp_established == 7
    assert (reading.net_rx_bytes, reading.net_tx_bytes) == (1500, 2300)  # loopback excluded
    assert ProcfsHostReader(str(proc_root)).cpu_model() == "Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz"


def test_cpu_busy_between_two_readings(proc_root):
    reader = ProcfsHostReader(str(proc_root))
    write_stat(proc_root, busy=100, idle=900)
    first = reader.read_fast().cpu
    write_stat(proc_root, busy=400, idle=1000)  # 300 busy of 400 ticks
    assert cpu_busy_pct(first, reader.read_fast().cpu) == pytest.approx(75.0)
    assert math.isnan(cpu_busy_pct(first, first))


def test_meminfo_without_memavailable(proc_root):
    (proc_root / "meminfo").write_text("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n")
    assert read_all(ProcfsHostReader(str(proc_root))).memory_used_pct == pytest.approx(50.0)


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


def test_latency_polls_back_off_while_there_is_nothing_to_measure():
    class Reader:
        name = "test"
        values = [[], [], [], [], [], [5.0], []]

        def read(self):
            return self.values.pop(0)

    monitor = LatencyMonitor(Reader(), interval_s=2.0)
    waits = []
    for _ in range(7):
        monitor.poll_once()
        waits.append(monitor.wait_s)
    assert waits == [4.0, 8.0, 16.0, 16.0, 16.0, 2.0, 4.0]  # found a round trip: back to every 2 s


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


def test_host_reader_is_chosen_by_what_the_machine_has(tmp_path, proc_root):
    assert open_host_reader(str(proc_root)).name == "procfs"
    assert open_host_reader(str(tmp_path / "no-proc")).name == "psutil"  # as on macOS or Windows
