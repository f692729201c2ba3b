"""The conditions' parsers, the shares and rates made of them, and the psutil reader over a fake psutil."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from tsstats.sampling.reading import CONDITION_FIELDS, condition_values
from tsstats.sources.conditions import (
    SECTOR_BYTES,
    Conditions,
    CpuKinds,
    CpuSensorReading,
    Disks,
    PsutilConditions,
    counter_rate,
    kind_shares,
    parse_core_lines,
    parse_cpu_kinds,
    parse_diskstats,
    parse_pressure_some_avg10,
    parse_swap,
    parse_vmstat_swaps,
)

NAN = math.nan


def test_cpu_kinds_group_the_stat_fields_as_top_does():
    kinds = parse_cpu_kinds("cpu  100 5 30 800 20 3 2 40 7 0")
    assert (kinds.user, kinds.system, kinds.iowait, kinds.steal) == (105, 35, 20, 40)
    assert kinds.total == 1000  # guest (7) is inside user already: not counted twice


def test_core_lines_are_each_online_core():
    text = "cpu  1 0 0 1 0 0 0 0\ncpu0 1 0 0 0 0 0 0 0\ncpu1 0 0 0 1 0 0 0 0\nintr 5\n"
    assert [core.total for core in parse_core_lines(text)] == [1, 1]


def test_kind_shares_between_two_readings():
    before = CpuKinds(user=100, system=50, iowait=10, steal=0, total=1000)
    after = CpuKinds(user=160, system=70, iowait=10, steal=20, total=1200)
    assert kind_shares(before, after) == pytest.approx({"user": 30, "system": 10, "iowait": 0, "steal": 10})


def test_a_kind_counter_that_goes_back_is_zero_never_negative():
    before = CpuKinds(user=100, system=50, iowait=10, steal=30, total=1000)
    after = CpuKinds(user=150, system=60, iowait=10, steal=5, total=1100)
    assert kind_shares(before, after)["steal"] == 0
    assert all(math.isnan(v) for v in kind_shares(after, after).values())


def test_pressure_some_avg10():
    text = "some avg10=12.34 avg60=1.00 avg300=0.50 total=123\nfull avg10=5.00 avg60=0 avg300=0 total=1\n"
    assert parse_pressure_some_avg10(text) == 12.34
    with pytest.raises(ValueError):
        parse_pressure_some_avg10("full avg10=5.00\n")


def test_swap_used_and_total_in_bytes():
    swap = parse_swap("MemTotal: 10 kB\nSwapTotal: 2048 kB\nSwapFree: 512 kB\n")
    assert (swap.used_bytes, swap.total_bytes) == (1536 * 1024, 2048 * 1024)
    with pytest.raises(ValueError):
        parse_swap("MemTotal: 10 kB\n")


def test_vmstat_swapped_pages():
    assert parse_vmstat_swaps("pgpgin 1\npswpin 7\npswpout 9\n") == (7, 9)
    with pytest.raises(ValueError):
        parse_vmstat_swaps("pgpgin 1\n")


def test_diskstats_sum_whole_disks_only():
    text = (" 8 0 sda 10 0 100 0 20 0 200 0 0 0 0\n"
            " 8 1 sda1 10 0 100 0 20 0 200 0 0 0 0\n"  # its partition: the same bytes again
            " 7 0 loop0 5 0 50 0 0 0 0 0 0 0 0\n"
            " 259 0 nvme0n1 1 0 8 0 2 0 16 0 0 0 0\n")
    disks = parse_diskstats(text, frozenset({"sda", "nvme0n1"}))
    assert disks == Disks(read_bytes=108 * SECTOR_BYTES, write_bytes=216 * SECTOR_BYTES, reads=11, writes=22)


def test_a_counter_that_goes_back_is_a_gap():
    assert counter_rate(100, 300, 2.0) == 100
    assert math.isnan(counter_rate(300, 100, 1.0))  # a device reset
    assert math.isnan(counter_rate(100, 200, 0.0))


def conditions(kinds: CpuKinds | None = None, disks: Disks | None = None, swapped: tuple[float, float] = (0, 0),
               sensors: CpuSensorReading | None = None, **extra) -> Conditions:
    return Conditions(kinds=kinds, pressure_pct=extra.get("pressure", {"cpu": 1.0, "memory": 2.0, "io": 3.0}),
                      swap_used_bytes=extra.get("swap_used", 4096.0), swapped_in_bytes=swapped[0],
                      swapped_out_bytes=swapped[1], disks=disks, filesystem_used_pct=extra.get("fs", 42.0),
                      sensors=sensors or CpuSensorReading(70.0, 80.0, 2000.0, 1500.0, 4000.0, 10.0))


def test_condition_values_of_two_readings():
    before = conditions(CpuKinds(0, 0, 0, 0, 0), Disks(0, 0, 0, 0), (0, 0),
                        CpuSensorReading(70.0, 80.0, 2000.0, 1500.0, 4000.0, 10.0))
    after = conditions(CpuKinds(50, 20, 10, 5, 200), Disks(4096, 8192, 4, 8), (8192, 4096),
                       CpuSensorReading(71.0, 85.0, 3000.0, 2000.0, 4000.0, 13.0))
    values = condition_values(before, after, 2.0)
    assert set(values) == set(CONDITION_FIELDS)
    assert values["cpu_user_pct"] == 25 and values["cpu_steal_pct"] == 2.5
    assert (values["disk_read_bps"], values["disk_write_bps"]) == (2048, 4096)
    assert (values["disk_read_ops"], values["disk_write_ops"]) == (2, 4)
    assert (values["swap_in_bps"], values["swap_out_bps"]) == (4096, 2048)
    assert values["cpu_throttle_eps"] == 1.5
    assert values["cpu_freq_pct"] == 75 and values["cpu_freq_min_mhz"] == 2000
    assert (values["cpu_temp_c"], values["cpu_core_temp_c"]) == (71, 85)
    assert (values["psi_io_pct"], values["fs_used_pct"], values["swap_used_bytes"]) == (3, 42, 4096)


def test_the_busiest_core_of_the_second():
    idle_core = CpuKinds(user=0, system=0, iowait=0, steal=0, total=100, idle=100)
    before = conditions(CpuKinds(0, 0, 0, 0, 0))
    before = Conditions(**{**vars(before), "cores": (idle_core, idle_core)})
    after = Conditions(**{**vars(before), "cores": (
        CpuKinds(user=0, system=0, iowait=0, steal=0, total=200, idle=200),  # idle all second
        CpuKinds(user=70, system=5, iowait=10, steal=0, total=200, idle=115))})  # 75 busy, 10 waiting of 100
    assert condition_values(before, after, 1.0)["cpu_core_max_pct"] == 75.0


def test_the_first_reading_has_levels_but_no_rates():
    values = condition_values(None, conditions(CpuKinds(50, 20, 10, 5, 200), Disks(1, 1, 1, 1)), 0.0)
    assert math.isnan(values["cpu_user_pct"]) and math.isnan(values["disk_read_bps"])
    assert values["psi_cpu_pct"] == 1 and values["cpu_temp_c"] == 70


def test_a_disk_counter_reset_is_a_gap_and_missing_readings_are_nan():
    before = conditions(disks=Disks(5000, 5000, 50, 50))
    after = conditions(disks=Disks(10, 10, 1, 1), sensors=CpuSensorReading(NAN, NAN, NAN, NAN, NAN, NAN),
                       pressure={"cpu": NAN, "memory": NAN, "io": NAN})
    values = condition_values(before, after, 1.0)
    assert math.isnan(values["disk_read_bps"]) and math.isnan(values["disk_write_ops"])
    assert all(math.isnan(values[name]) for name in ("cpu_temp_c", "cpu_freq_pct", "psi_cpu_pct",
                                                     "cpu_throttle_eps"))


def fake_psutil(temperatures=None, freqs=None, swap_fails=False):
    def swap_memory():
        if swap_fails:
            raise RuntimeError("no swap information")
        return SimpleNamespace(used=1024, sin=2048, sout=4096)

    times = SimpleNamespace(_asdict=lambda: {"user": 10.0, "nice": 1.0, "system": 5.0, "idle": 80.0,
                                             "iowait": 2.0, "irq": 1.0, "softirq": 1.0, "steal": 0.0,
                                             "guest": 3.0})
    module = SimpleNamespace(
        cpu_times=lambda: times, swap_memory=swap_memory,
        disk_io_counters=lambda perdisk=False: SimpleNamespace(read_bytes=10, write_bytes=20, read_count=1,
                                                               write_count=2),
        cpu_freq=lambda percpu=True: freqs or [])
    if temperatures is not None:
        module.sensors_temperatures = lambda: temperatures
    return module


def test_psutil_reader_reads_what_psutil_gives(tmp_path):
    temperatures = {"coretemp": [SimpleNamespace(label="Package id 0", current=61.0),
                                 SimpleNamespace(label="Core 0", current=58.0),
                                 SimpleNamespace(label="Core 1", current=63.0)],
                    "nvme": [SimpleNamespace(label="Composite", current=90.0)]}
    freqs = [SimpleNamespace(current=2000.0, max=4000.0), SimpleNamespace(current=3000.0, max=4000.0)]
    reader = PsutilConditions(fake_psutil(temperatures, freqs), str(tmp_path))
    reading = reader.read()
    assert reading.kinds == CpuKinds(user=11.0, system=7.0, iowait=2.0, steal=0.0, total=100.0, idle=80.0)
    assert (reading.swap_used_bytes, reading.swapped_in_bytes, reading.swapped_out_bytes) == (1024, 2048, 4096)
    assert reading.disks == Disks(10, 20, 1, 2)
    assert (reading.sensors.package_c, reading.sensors.hottest_core_c) == (61.0, 63.0)
    assert (reading.sensors.freq_mean_mhz, reading.sensors.freq_min_mhz, reading.sensors.freq_max_mhz) == \
        (2500.0, 2000.0, 4000.0)
    assert 0 < reading.filesystem_used_pct <= 100
    sources = reader.sources()
    assert sources["pressure"] == "" and sources["cpuThrottle"] == ""  # psutil gives neither
    assert sources["cpuTemperature"] == "psutil" and sources["disks"] == "psutil"


def test_psutil_reader_without_sensors_or_swap_says_so(tmp_path):
    reader = PsutilConditions(fake_psutil(swap_fails=True), str(tmp_path))
    reading = reader.read()
    assert math.isnan(reading.swap_used_bytes) and math.isnan(reading.sensors.package_c)
    sources = reader.sources()
    assert sources["swap"] == "" and sources["cpuTemperature"] == "" and sources["cpuFrequency"] == ""
