"""The conditions through the sampler: read once a second from canned procfs and sysfs, stored as columns,
rolled up, served as history metrics, named in meta.sources; a counter reset is a gap."""

from __future__ import annotations

import os

import pytest
from support.conditions import add_block, add_coretemp, add_cpus, diskstats_line, write_proc_conditions
from support.nvml import FakeGpu, fake_nvml
from support.sampler_rig import Rig

from tsstats.comparisons.validation import ComparisonUpdate, NewComparison
from tsstats.storage.catalog import HOST_METRICS
from tsstats.storage.history import parse_history_query, run_history


def conditions_rig(tmp_path, proc_root) -> Rig:
    sys_root = proc_root.parent / "sys"
    add_block(sys_root, "sda", physical=True)
    add_coretemp(sys_root, 60_000, [55_000, 67_000])
    add_cpus(sys_root, [2_000_000] * 4, 4_000_000, core_throttles=[0, 0, 0, 0], package_throttle=0)
    write_proc_conditions(proc_root, pswpin=0, pswpout=0, disks=diskstats_line("sda", 0, 0, 0, 0))
    return Rig(tmp_path, proc_root)


def stored(rig: Rig, sql: str) -> list[tuple]:
    return rig.store.read_now(lambda con: con.execute(sql).fetchall())


def test_conditions_are_read_once_a_second_and_stored(tmp_path, proc_root):
    rig = conditions_rig(tmp_path, proc_root)
    for _ in range(10):
        rig.tick(cpu_pct=25)
    # one second later: 2 MiB written, 100 write operations, 3 throttle events, pages swapped out
    write_proc_conditions(proc_root, pswpin=0, pswpout=256, pressure=(4.0, 5.0, 6.0),
                          disks=diskstats_line("sda", 0, 0, 100, 4096))
    add_cpus(proc_root.parent / "sys", [2_000_000] * 4, 4_000_000, core_throttles=[1, 1, 1, 0], package_throttle=0)
    for _ in range(11):
        rig.tick(cpu_pct=25)
    rig.sampler.parts.flusher.flush()
    rows = stored(rig, "SELECT disk_write_bps, disk_write_ops_c, psi_io_c, cpu_temp_dc, cpu_core_temp_dc, "
                       "cpu_freq_pm, cpu_throttle_c, swap_out_bps, cpu_user_pm FROM samples ORDER BY ts_ms")
    last = rows[-1]
    assert last[0] == pytest.approx(2 * 1024 * 1024, rel=0.02)  # over the second between the two readings
    assert last[1] / 100 == pytest.approx(100, rel=0.02)
    assert last[2] / 100 == 6.0
    assert (last[3] / 10, last[4] / 10) == (60.0, 67.0)
    assert last[5] / 10 == 50.0  # 2 GHz of 4
    assert last[6] / 100 == pytest.approx(3, rel=0.02)
    assert last[7] == pytest.approx(256 * os.sysconf("SC_PAGE_SIZE"), rel=0.02)
    assert last[8] / 10 == pytest.approx(25.0, abs=0.2)
    distinct = stored(rig, "SELECT count(DISTINCT disk_write_bps) FROM samples WHERE disk_write_bps IS NOT NULL")
    assert distinct[0][0] <= 2  # carried between the once-a-second readings
    stats = rig.stats()
    assert stats["meta"]["sources"]["conditions"]["cpuTemperature"] == "hwmon/thermal"
    assert stats["meta"]["sources"]["conditions"]["disks"] == "procfs"
    rig.close()


def test_a_disk_counter_that_goes_back_is_a_gap(tmp_path, proc_root):
    rig = conditions_rig(tmp_path, proc_root)
    write_proc_conditions(proc_root, disks=diskstats_line("sda", 0, 0, 500, 100_000))
    for _ in range(11):
        rig.tick()
    write_proc_conditions(proc_root, disks=diskstats_line("sda", 0, 0, 5, 10))  # the device was reset
    for _ in range(11):
        rig.tick()
    rig.sampler.parts.flusher.flush()
    rates = [row[0] for row in stored(rig, "SELECT disk_write_bps FROM samples ORDER BY ts_ms")]
    assert all(rate is None or rate >= 0 for rate in rates)
    assert rates[-1] is None  # a gap, not a negative rate
    rig.close()


def test_every_condition_is_a_history_metric_with_its_unit(tmp_path, proc_root):
    names = {metric.name: metric.unit for metric in HOST_METRICS}
    for name, unit in (("cpuSteal", "%"), ("pressureIo", "%"), ("swapIn", "B/s"), ("diskWriteOps", "ops/s"),
                       ("cpuTemperature", "°C"), ("cpuFrequency", "MHz"), ("cpuThrottleEvents", "events/s"),
                       ("filesystemUsed", "%")):
        assert names[name] == unit
    rig = conditions_rig(tmp_path, proc_root)
    for _ in range(25):
        rig.tick(cpu_pct=40)
    rig.sampler.parts.flusher.flush()
    now_s = rig.clock.wall
    query = parse_history_query({"metrics": ["cpuTemperature,filesystemUsed,cpuFrequencyShare,pressureCpu"],
                                 "from": ["-10s"],
                                 "step": ["10s"], "agg": ["avg,max"]}, now_s=now_s)
    rollups = rig.sampler.parts.flusher.rollups
    answer = rig.store.read_now(run_history, query, rollups.minutes_until, rollups.hours_until)
    series = answer["series"]
    assert series["cpuTemperature"]["max"][-1] == 60.0
    assert series["cpuFrequencyShare"]["avg"][-1] == 50.0
    assert series["pressureCpu"]["avg"][-1] == 1.5
    assert 0 <= series["filesystemUsed"]["avg"][-1] <= 100
    rig.close()


def run_comparison(rig: Rig, during) -> dict:
    """A comparison created running, ``during()`` between its start and end, then completed: its record."""
    life = rig.sampler.parts.comparisons
    created = rig.store.write(lambda con: life.create(con, NewComparison("run", ("m",), "running", "{}"),
                                                      int(rig.clock.wall * 1000)))
    rig.store.run_writes(committed=rig.sampler._written)
    comparison_id = created.result()["id"]
    during()
    done = rig.store.write(lambda con: life.update(con, comparison_id, ComparisonUpdate("completed", None, None,
                                                                                        None, None),
                                                   int(rig.clock.wall * 1000)))
    rig.store.run_writes(committed=rig.sampler._written)
    return done.result()


def test_a_run_during_which_the_cpu_throttled_is_unfair(tmp_path, proc_root):
    rig = conditions_rig(tmp_path, proc_root)
    for _ in range(11):
        rig.tick(cpu_pct=50)

    def throttle():
        for second in range(3):
            add_cpus(proc_root.parent / "sys", [2_000_000] * 4, 4_000_000, core_throttles=[second + 1] * 4,
                     package_throttle=0)
            for _ in range(10):
                rig.tick(cpu_pct=50)

    record = run_comparison(rig, throttle)
    conditions = record["conditions"]
    assert conditions["cpuThrottledS"] == pytest.approx(3.0, abs=1.1)
    assert conditions["peakCpuTemperatureC"] == 60.0 and conditions["cpuFrequencyPct"] == 50.0
    assert conditions["contentionPct"] is None and "contentionPct" in conditions["unavailable"]  # no pids
    assert record["fair"] is False and any(r.startswith("cpu throttled") for r in record["unfairReasons"])
    for _ in range(11):  # a second without throttling: the once-a-second reading of the last one is carried
        rig.tick(cpu_pct=50)  # to the ticks of the next second (docs/conditions.md)
    quiet = run_comparison(rig, lambda: [rig.tick(cpu_pct=50) for _ in range(20)])
    assert quiet["unfairReasons"] == [] and quiet["fair"] is True, quiet["unfairReasons"]
    rig.close()


def test_a_run_during_which_a_gpu_throttled_names_the_reason(tmp_path, proc_root):
    gpu = FakeGpu(util=90)
    rig = Rig(tmp_path, proc_root, nvml=fake_nvml([gpu]))
    for _ in range(11):
        rig.tick(cpu_pct=50)

    def heat():
        gpu.throttle = 0x40 | 0x1  # HwThermalSlowdown (and GpuIdle, which is no throttling)
        for _ in range(25):
            rig.tick(cpu_pct=50)
        gpu.throttle = 0

    record = run_comparison(rig, heat)
    conditions = record["conditions"]
    assert conditions["gpuThrottledS"] == pytest.approx(2.5, abs=1.1)
    assert conditions["gpuThrottleReasons"] == ["HwThermalSlowdown"]
    assert any(r.startswith("gpu throttled") and "HwThermalSlowdown" in r for r in record["unfairReasons"])
    rig.sampler.parts.flusher.flush()
    rows = stored(rig, "SELECT max(sm_clock_mhz), max(fan_pct), bit_or(throttle_mask) FROM gpu_samples")
    assert rows[0] == (1980, 40, 0x41)
    rig.close()


def test_a_window_reads_the_stored_samples_unless_every_one_of_it_is_still_held(tmp_path, proc_root):
    """A run's window after the oldest sample held in memory reads no table; one reaching back before it reads the
    stored rows too: either way the window's host and GPU samples are exactly those of its span."""
    from tsstats.comparisons.conditions import window_samples

    rig = Rig(tmp_path, proc_root, nvml=fake_nvml([FakeGpu(util=30)]))
    for _ in range(30):
        rig.tick(cpu_pct=40)
    rig.sampler.parts.flusher.flush()
    for _ in range(20):
        rig.tick(cpu_pct=40)
    parts = rig.sampler.parts
    stored_ts = [row[0] for row in stored(rig, "SELECT ts_ms FROM samples ORDER BY ts_ms")]
    held_ts = [float(ts) for ts in parts.ring.pending_columns()["ts_ms"]]
    every = [float(ts) for ts in stored_ts] + held_ts
    assert len(stored_ts) == 30 and len(held_ts) == 20
    to_ms = int(every[-1]) + 1
    for from_ms in (every[5], every[29], every[30], every[31], every[40]):
        window = rig.store.read_now(lambda con, start=from_ms: window_samples(
            con, parts.ring.pending_columns(), parts.gpu_ring.pending_columns(), int(start), int(to_ms)))
        expected = [ts for ts in every if from_ms <= ts <= to_ms]
        assert list(window.host["ts_ms"]) == expected, from_ms
        assert list(window.gpu["ts_ms"]) == expected, from_ms  # one GPU: a row a tick
    rig.close()
