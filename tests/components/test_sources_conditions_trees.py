"""The conditions' readers over canned sysfs and procfs trees (temperatures, clocks, throttling, disks,
pressure, swap), a sensor that disappears mid-run, and the procfs reader against psutil on this machine."""

from __future__ import annotations

import math
import os
import shutil

import psutil
import pytest
from support.conditions import (
    add_block,
    add_coretemp,
    add_cpus,
    add_other_chip,
    add_thermal_zone,
    diskstats_line,
    write_proc_conditions,
)
from support.procfs import write_stat

from tsstats.sources.conditions import SECTOR_BYTES, CpuSensors, ProcfsConditions, find_sensor_files, whole_disks


def test_cpu_temperatures_come_from_the_cpu_chip_only(tmp_path):
    add_other_chip(tmp_path)
    add_coretemp(tmp_path, 64_000, [58_000, 71_500, 60_000])
    reading = CpuSensors(str(tmp_path)).read()
    assert (reading.package_c, reading.hottest_core_c) == (64.0, 71.5)


def test_a_thermal_zone_gives_the_package_without_hwmon(tmp_path):
    add_thermal_zone(tmp_path, "acpitz", 99_000, zone=0)
    add_thermal_zone(tmp_path, "x86_pkg_temp", 55_000, zone=1)
    reading = CpuSensors(str(tmp_path)).read()
    assert reading.package_c == 55.0 and math.isnan(reading.hottest_core_c)


def test_clocks_and_throttle_counters_of_two_packages(tmp_path):
    add_cpus(tmp_path, [1_000_000, 2_000_000, 3_000_000, 2_000_000], 4_000_000, core_throttles=[1, 2, 3, 4],
             package_throttle=10, packages=[0, 0, 1, 1])
    reading = CpuSensors(str(tmp_path)).read()
    assert (reading.freq_mean_mhz, reading.freq_min_mhz, reading.freq_max_mhz) == (2000.0, 1000.0, 4000.0)
    assert reading.throttle_count == 1 + 2 + 3 + 4 + 10 + 10  # each package's counter once


def test_a_machine_without_sensors_reads_nan_and_says_so(tmp_path):
    found = find_sensor_files(str(tmp_path))
    assert found.sources == {"cpuTemperature": "", "cpuFrequency": "", "cpuThrottle": ""}
    reading = CpuSensors(str(tmp_path)).read()
    assert all(math.isnan(value) for value in vars(reading).values())


def test_a_sensor_that_fails_mid_run_reads_nan_and_the_rest_goes_on(tmp_path):
    chip = add_coretemp(tmp_path, 64_000, [58_000])
    add_cpus(tmp_path, [2_000_000], 4_000_000, core_throttles=[3])
    sensors = CpuSensors(str(tmp_path))
    assert sensors.read().package_c == 64.0
    (chip / "temp1_input").write_text("")  # what a sensor read answers when its driver gives up
    (tmp_path / "devices/system/cpu/cpu0/thermal_throttle/core_throttle_count").write_text("garbage\n")
    reading = sensors.read()
    assert math.isnan(reading.package_c) and math.isnan(reading.throttle_count)
    assert reading.hottest_core_c == 58.0 and reading.freq_mean_mhz == 2000.0
    (chip / "temp1_input").write_text("65000\n")  # back
    assert sensors.read().package_c == 65.0


def test_a_sensor_file_removed_before_the_first_read_is_skipped(tmp_path):
    chip = add_coretemp(tmp_path, 64_000, [58_000])
    sensors = CpuSensors(str(tmp_path))
    shutil.rmtree(chip)  # the chip's driver unloaded between discovery and the first read
    reading = sensors.read()
    assert math.isnan(reading.package_c) and math.isnan(reading.hottest_core_c)


def canned(tmp_path):
    proc, sys_root = tmp_path / "proc", tmp_path / "sys"
    proc.mkdir()
    write_stat(proc, 100, 900)
    add_block(sys_root, "sda", physical=True)
    add_block(sys_root, "loop0", physical=False)
    add_block(sys_root, "dm-0", physical=False)
    disks = diskstats_line("sda", 10, 100, 20, 200) + diskstats_line("sda1", 10, 100, 20, 200, minor=1) + \
        diskstats_line("dm-0", 10, 100, 20, 200, major=253)
    write_proc_conditions(proc, swap_total_kb=2048, swap_free_kb=1024, pswpin=3, pswpout=4, disks=disks)
    add_coretemp(sys_root, 50_000, [45_000])
    return proc, sys_root


def test_procfs_reader_on_canned_trees(tmp_path):
    proc, sys_root = canned(tmp_path)
    assert whole_disks(str(sys_root)) == frozenset({"sda"})
    reader = ProcfsConditions(str(proc), str(sys_root), str(tmp_path))
    reading = reader.read()
    assert reading.kinds is not None and reading.kinds.total == pytest.approx(1000 / os.sysconf("SC_CLK_TCK"))
    assert reading.pressure_pct == {"cpu": 1.5, "memory": 2.5, "io": 3.5}
    assert reading.swap_used_bytes == 1024 * 1024
    page = os.sysconf("SC_PAGE_SIZE")
    assert (reading.swapped_in_bytes, reading.swapped_out_bytes) == (3 * page, 4 * page)
    assert reading.disks is not None
    assert (reading.disks.read_bytes, reading.disks.writes) == (100 * SECTOR_BYTES, 20)  # sda alone
    assert reading.sensors.package_c == 50.0
    assert reader.sources() == {"cpuKinds": "procfs", "pressure": "procfs", "swap": "procfs", "disks": "procfs",
                                "filesystem": "statvfs", "cpuTemperature": "hwmon/thermal", "cpuFrequency": "",
                                "cpuThrottle": ""}
    reader.close()


def test_a_kernel_without_pressure_files_lists_pressure_unavailable(tmp_path):
    proc, sys_root = canned(tmp_path)
    shutil.rmtree(proc / "pressure")
    reader = ProcfsConditions(str(proc), str(sys_root), str(tmp_path))
    assert reader.sources()["pressure"] == ""
    assert all(math.isnan(value) for value in reader.read().pressure_pct.values())
    assert reader.failures == {}  # unavailable from the start: not a failure to log
    reader.close()


def test_a_file_that_fails_after_start_is_a_failure_and_the_rest_goes_on(tmp_path):
    proc, sys_root = canned(tmp_path)
    reader = ProcfsConditions(str(proc), str(sys_root), str(tmp_path))
    (proc / "pressure" / "io").write_text("garbage\n")
    reading = reader.read()
    assert math.isnan(reading.pressure_pct["io"]) and reading.pressure_pct["cpu"] == 1.5
    assert reading.disks is not None and reading.swap_used_bytes == 1024 * 1024
    assert list(reader.failures) == ["pressure io"]
    reader.close()


def test_procfs_reader_agrees_with_psutil_on_this_machine(tmp_path):
    if not os.path.exists("/proc/stat"):
        pytest.skip("no procfs here")
    reader = ProcfsConditions("/proc", "/sys", str(tmp_path))
    reading = reader.read()
    swap = psutil.swap_memory()
    assert reading.swap_used_bytes == pytest.approx(swap.used, abs=64 * 1024 * 1024)
    assert reading.kinds is not None
    times = psutil.cpu_times()
    assert reading.kinds.steal == pytest.approx(getattr(times, "steal", 0.0), abs=5.0)
    if reading.disks is not None and reader.disks:
        counters = psutil.disk_io_counters(perdisk=True)
        psutil_bytes = sum(counters[name].read_bytes for name in reader.disks if name in counters)
        assert reading.disks.read_bytes == pytest.approx(psutil_bytes, rel=0.01, abs=16 * 1024 * 1024)
    assert 0 <= reading.filesystem_used_pct <= 100
    reader.close()
