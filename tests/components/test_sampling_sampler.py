"""The sampler in-process on canned procfs, a fake NVML and a fake powercap tree, with a real DuckDB file."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from support.nvml import FakeGpu, fake_nvml
from support.powercap import FakePowercap
from support.procfs import write_stat
from support.sampler_rig import START_WALL, Rig, make_sampler

from tsstats.assembly import build_sources, close_sources
from tsstats.comparisons.validation import validate_new_comparison, validate_update
from tsstats.core.settings import load_settings
from tsstats.sampling.clocks import Clocks
from tsstats.storage.history import parse_history_query, run_history
from tsstats.storage.store import Store


def test_snapshot_from_canned_procfs(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for _ in range(10):
        rig.tick(cpu_pct=25)
    stats = rig.stats()
    system, live = stats["systemMetrics"], stats["liveStats"]
    assert system["cpuUsage"] == pytest.approx(25.0)
    assert system["memoryUsage"] == pytest.approx(75.0)
    assert system["activeConnections"] == 7
    assert live["systemLoad"] == pytest.approx(50.0)  # load 2.00 over 4 CPUs
    assert system["gpuUsage"] == 0 and "gpuUsage" in stats["meta"]["unavailable"]
    assert stats["meta"]["sources"]["gpu"] == "absent"
    rig.close()


def test_the_last_second_s_cpu_by_whom_and_the_temperatures_for_a_study_to_wait_on(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root, nvml=fake_nvml([FakeGpu(temperature=47)]))
    try:
        assert rig.sampler.parts.reader.now is None  # no whole second yet
        for _ in range(10):  # a second at 50 % busy on 4 CPUs, of which the service used 0.1 CPU-second
            rig.clock.process_cpu += 0.01
            rig.tick(cpu_pct=50.0)
        now = rig.sampler.parts.reader.now
        assert now is not None and 0.5 <= now.seconds <= 0.61  # the ticks of the last half second
        assert now.cpu_pct == pytest.approx(50.0) and now.service_pct == pytest.approx(2.5)
        assert now.others_pct == pytest.approx(47.5) and now.gpu_temperature_c == {0: 47.0}
        assert now.taken_ms == pytest.approx((START_WALL + 1.0) * 1000.0)
    finally:
        rig.close()


def test_contract_shape_every_field_finite(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    rig.tick(10)
    stats = rig.stats()
    expected = {
        "systemMetrics": {"cpuUsage", "gpuUsage", "memoryUsage", "networkLatency", "activeConnections"},
        "liveStats": {"activeComparisons", "queueLength", "systemLoad", "carbonFootprint", "energyConsumption",
                      "uptime", "responseTime", "errorRate"},
        "sustainability": {"totalCarbonSaved", "greenScore", "energyEfficiency", "renewableEnergyUsage",
                           "carbonOffset"},
        "comparisonStats": {"totalComparisons", "modelsCompared", "averageAccuracy", "averageSpeed"},
        "enterpriseMetrics": {"modelAccuracy", "processingSpeed", "systemUptime", "successRate", "responseTime",
                              "queueLength", "concurrentComparisons", "dataThroughput"},
    }
    assert set(stats) == set(expected) | {"meta"}
    for group, fields in expected.items():
        assert set(stats[group]) == fields
        for name, value in stats[group].items():
            assert isinstance(value, (int, float)) and not isinstance(value, bool), name
            assert np.isfinite(value), name
    units = stats["meta"]["units"]
    assert {group: set(fields) for group, fields in units.items()} == expected  # a unit for every field
    rig.close()


def test_two_gpus_one_failing(tmp_path, proc_root):
    good, bad = FakeGpu(util=60, power_mw=100_000), FakeGpu(util=10, failing=True)
    rig = Rig(tmp_path, proc_root, nvml=fake_nvml([good, bad]))
    for _ in range(5):
        rig.tick(10)
    stats = rig.stats()
    assert stats["systemMetrics"]["gpuUsage"] == pytest.approx(60.0)
    assert stats["meta"]["sources"]["gpu"] == "nvml"
    assert [gpu["index"] for gpu in stats["meta"]["gpus"]] == [0, 1]
    assert stats["meta"]["gpus"][1]["utilization"] is None
    assert "gpuUsage" not in stats["meta"]["unavailable"]
    rig.close()
    rows = Store(rig.settings.db).read_now(
        lambda con: con.execute("SELECT gpu, count(*), avg(util_pm) FROM gpu_samples GROUP BY gpu ORDER BY gpu"
                                ).fetchall())
    assert rows[0] == (0, 5, 600.0) and rows[1][2] is None


def test_without_counters_estimates_are_flagged(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for _ in range(20):
        rig.tick(50)
    rig.sampler.parts.flusher.flush()
    stats = rig.stats()
    live, meta = stats["liveStats"], stats["meta"]
    assert live["energyConsumption"] > 0 and live["carbonFootprint"] > 0
    assert meta["sources"]["cpuPower"] == "tdp_model" and meta["sources"]["memoryPower"] == "dimm_model"
    assert {"energyConsumption", "carbonFootprint", "energyEfficiency"} <= set(meta["estimated"])
    # TDP 150 W (Xeon Gold 6248) at 50%: 150 * (0.1 + 0.9 * 0.125) W, plus 2 DIMMs x 5 W, for 2 s
    expected_j = (150 * (0.1 + 0.9 * 0.125) + 10.0) * 2.0
    assert live["energyConsumption"] == pytest.approx(expected_j / 3.6e6, rel=0.01)
    assert live["carbonFootprint"] == pytest.approx(expected_j / 3.6e6 * 473, rel=0.01)  # grams
    rig.close()


def test_energy_from_rapl_at_known_wattage(tmp_path, proc_root):
    tree = FakePowercap(tmp_path / "powercap", packages=2)
    rig = Rig(tmp_path, proc_root, powercap=tmp_path / "powercap", pue=1.5, grid_region="FRA")
    counters = {"intel-rapl:0": 0, "intel-rapl:1": 0, "intel-rapl:0:2": 0, "intel-rapl:1:2": 0}
    watts = {"intel-rapl:0": 40.0, "intel-rapl:1": 20.0, "intel-rapl:0:2": 3.0, "intel-rapl:1:2": 2.0}
    for _ in range(100):  # 10 s
        for entry, power in watts.items():
            counters[entry] += int(power * 0.1 * 1e6)
            tree.set(entry, counters[entry])
        rig.tick(30)
    rig.sampler.parts.flusher.flush()
    stats = rig.stats()
    expected_kwh = (60.0 + 5.0) * 10.0 * 1.5 / 3.6e6
    assert stats["liveStats"]["energyConsumption"] == pytest.approx(expected_kwh, rel=0.02)
    assert stats["meta"]["sources"]["cpuPower"] == "rapl"
    assert stats["meta"]["estimated"] == []
    assert stats["meta"]["sources"]["grid"]["region"] == "FRA"
    # CPU at 30% of 600 J active, no GPU: efficiency 30%
    assert stats["sustainability"]["energyEfficiency"] == pytest.approx(30.0, abs=0.5)
    rig.close()


def test_outages_lower_uptime_and_survive_restart(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for _ in range(10):
        rig.tick(5)  # 1 s of samples
    rig.tick(5, seconds=1.0)  # a tick made late by load: still sampling, not down time
    for _ in range(9):
        rig.tick(5)
    rig.tick(5, seconds=6.0)  # 6 s without a sample: down time
    rig.sampler.parts.flusher.flush()
    uptime = rig.stats()["liveStats"]["uptime"]
    span = 0.1 * 18 + 1.0 + 6.0  # from the first tick to the last
    assert uptime == pytest.approx(100 * (span - 6.0) / span, abs=0.5)
    rig.close()
    rig.clock.advance(7.0)  # the service was stopped for 7 s
    rig.open()
    rig.tick(5)
    rig.sampler.parts.flusher.flush()
    span += 7.1
    assert rig.stats()["liveStats"]["uptime"] == pytest.approx(100 * (span - 13.1) / span, abs=1.0)
    rig.close()


def stored_times(store: Store) -> list[int]:
    return store.read_now(lambda con: con.execute("SELECT list(ts_ms ORDER BY rowid) FROM samples").fetchall()[0][0])


def rollups_agree(store: Store) -> bool:
    """Every closed minute bucket counts exactly the samples of its minute."""
    def check(con):
        return con.execute("SELECT count(*) FROM rollup_1m r LEFT JOIN (SELECT ts_ms // 60000 * 60000 AS b, "
                           "count(*) AS n FROM samples GROUP BY b) s ON s.b = r.bucket_ms "
                           "WHERE s.n IS DISTINCT FROM r.samples").fetchall()[0][0] == 0
    return store.read_now(check)


def test_a_wall_clock_step_back_moves_what_was_stamped_ahead(tmp_path, proc_root):
    """Stepped an hour ahead for 100 s, then back: the rows stamped ahead move back onto the times they were taken,
    the next sample follows the wall clock, rows stay in order with no duplicate, and the rollups agree."""
    rig = Rig(tmp_path, proc_root, flush_interval="1s")
    for _ in range(600):  # a minute at 10 Hz
        rig.tick(20)
    rig.tick(20, wall=rig.clock.wall + 3600.1)  # an hour ahead
    for _ in range(1000):
        rig.tick(20)
        if rig.clock.mono % 1 < 0.05:
            rig.sampler.parts.flusher.flush()
    rig.sampler.parts.flusher.flush()
    true_wall = START_WALL + rig.clock.mono - 1000.0
    rig.tick(20, wall=true_wall + 0.1)  # back to the true time
    rig.sampler.parts.flusher.flush()
    times = stored_times(rig.store)
    assert times == sorted(times) and len(set(times)) == len(times)
    assert abs(times[-1] / 1000.0 - rig.clock.wall) < 1.0  # follows the wall clock at once
    steps = np.diff(times)
    assert steps.max() < 200  # the hour is gone: every row sits where it was taken (100 ms apart)
    for _ in range(700):
        rig.tick(20)
    rig.sampler.parts.flusher.flush()
    times = stored_times(rig.store)
    assert times == sorted(times) and len(set(times)) == len(times) and np.diff(times).max() < 200
    assert rig.store.read_now(lambda con: con.execute("SELECT count(*) FROM outages").fetchall()[0][0]) == 0
    assert rollups_agree(rig.store)
    assert rig.stats()["liveStats"]["uptime"] == 100.0
    rig.close()


def test_a_small_step_back_keeps_order(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for _ in range(5):
        rig.tick(20)
    rig.tick(20, wall=rig.clock.wall - 0.5)  # half a second back: absorbed
    for _ in range(5):
        rig.tick(20)
    rig.close()
    times = stored_times(Store(rig.settings.db))
    assert times == sorted(times) and len(set(times)) == len(times)


def test_a_step_back_while_stopped_is_undone_at_start(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for _ in range(20):
        rig.tick(20)
    rig.tick(20, wall=rig.clock.wall + 3600.1)
    for _ in range(50):
        rig.tick(20)
    rig.close()
    rig.clock.advance(5.0, wall=START_WALL + rig.clock.mono + 5.0 - 1000.0)  # stopped 5 s; the clock is set right
    rig.open()
    rig.tick(20)
    rig.sampler.parts.flusher.flush()
    times = stored_times(rig.store)
    assert times == sorted(times) and len(set(times)) == len(times)
    assert abs(times[-1] / 1000.0 - rig.clock.wall) < 1.0
    assert np.diff(times).max() < 5300  # the 5 s stop is the one gap left
    rig.close()


def test_restart_keeps_totals(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for _ in range(20):
        rig.tick(50)
    rig.close()
    before = rig.sampler.parts.ledger.view().totals
    rig.open()
    after = rig.sampler.parts.ledger.view().totals
    assert (after.cpu_j, after.gpu_j, after.mem_j, after.covered_s) == pytest.approx(
        (before.cpu_j, before.gpu_j, before.mem_j, before.covered_s))
    rig.tick(0, seconds=0.0)
    window = rig.stats()["liveStats"]["energyConsumption"]
    assert window == pytest.approx(before.total_j / 3.6e6, rel=1e-3)
    rig.close()


def test_carbon_saved_against_a_declared_baseline(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root, baseline_power_w=500, grid_region="FRA")
    for _ in range(50):
        rig.tick(50)
    rig.sampler.parts.flusher.flush()
    stats = rig.stats()
    # 5 s: the baseline drew 500 W; the machine (TDP model, 150 W TDP at 50%, plus 10 W of DIMMs) far less
    machine_j = (150 * (0.1 + 0.9 * 0.125) + 10.0) * 5.0
    intensity = stats["meta"]["sources"]["grid"]["gPerKwh"]
    expected = (500 * 5.0 - machine_j) / 3.6e6 * intensity / 1000
    assert stats["sustainability"]["totalCarbonSaved"] == pytest.approx(expected, rel=0.02)
    assert "totalCarbonSaved" not in stats["meta"]["unavailable"]
    assert "totalCarbonSaved" in stats["meta"]["estimated"]
    rig.close()


def test_stalled_sampler_is_reported(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    assert rig.sampler.stalled  # nothing sampled yet
    rig.tick(5)
    assert not rig.sampler.stalled
    rig.clock.advance(6.0)
    assert rig.sampler.stalled
    rig.close()


def test_stats_are_built_on_demand_not_on_a_timer(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root, update_interval="1s")
    publisher = rig.sampler.parts.publisher
    assert publisher.due()  # nothing built yet
    rig.tick(10)
    first = publisher.build()
    for _ in range(5):
        rig.tick(10)  # ticks alone build nothing
    assert publisher.snapshot is first and not publisher.due()
    rig.clock.advance(0.6)
    assert publisher.snapshot is first and publisher.due()  # older than update_interval: due when asked
    second = publisher.build()
    assert second.version == first.version + 1 and not publisher.due()
    publisher.invalidate()  # a write changed what the stats show
    assert publisher.due()
    rig.close()


def test_energy_counters_never_dip_across_flushes(tmp_path, proc_root):
    """The sampler thread flushes every 100 ms while another thread reads the retained totals (what
    /metrics exports as counters) as fast as it can: they never decrease."""
    settings = load_settings({"proc_root": str(proc_root), "db": str(tmp_path / "dip.duckdb"), "sample_hz": "100",
                              "idle_sample_hz": "100", "flush_interval": "100ms",
                              "powercap_root": str(tmp_path / "none")},
                             env={"HOME": str(tmp_path)})
    write_stat(proc_root, 0, 0)
    store = Store(settings.db)
    sources = build_sources(settings, nvml=fake_nvml(None, init_fails=True), sys_root=str(tmp_path / "sys"))
    sampler = make_sampler(settings, store, sources, Clocks())
    sampler.start()
    readings, dips = [], 0
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            readings.append(sampler.parts.ledger.view().totals.total_j)
    finally:
        sampler.stop()
        close_sources(sources)
        store.close()
    dips = sum(1 for before, after in zip(readings, readings[1:], strict=False) if after < before)
    assert sampler.parts.flusher.health.flushes >= 10 and len(readings) > 1000
    assert dips == 0 and readings[-1] > readings[0]


def test_a_wall_clock_step_forward_is_not_an_outage(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for _ in range(10):
        rig.tick(5)
    rig.tick(5, wall=rig.clock.wall + 3600.1)  # the wall clock jumps an hour ahead; sampling never stopped
    for _ in range(10):
        rig.tick(5)
    rig.sampler.parts.flusher.flush()
    stats = rig.stats()
    assert stats["liveStats"]["uptime"] == 100.0
    assert rig.store.read_now(lambda con: con.execute("SELECT count(*) FROM outages").fetchall()[0][0]) == 0
    rig.close()


def test_response_time_and_error_rate_follow_the_activity_window(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    rig.tick(5)
    now_ms = int(rig.clock.wall * 1000)
    rows = [(now_ms - 3_601_000, "failed", 900.0), (now_ms - 3_590_000, "completed", 100.0),
            (now_ms - 60_000, "failed", None), (now_ms - 1_000, "completed", 300.0),
            (now_ms - 500, "cancelled", 200.0)]

    def insert(con):
        for finished, status, latency in rows:
            con.execute("INSERT INTO comparisons (name, models, status, created_ms, started_ms, finished_ms, "
                        "latency_ms) VALUES ('x', ['m'], ?, ?, ?, ?, ?)",
                        [status, finished - 5000, finished - 5000, finished, latency])

    rig.store.write(insert)
    rig.store.run_writes()
    rig.sampler.parts.comparisons.changed()  # rows written outside the write path (as a clock step moves them)
    live = rig.stats()["liveStats"]
    assert live["responseTime"] == pytest.approx(200.0)  # 100, 300 and 200: the first is outside the hour
    assert live["errorRate"] == pytest.approx(100.0 / 3, abs=0.005)  # 1 failed of 3, to 2 decimals
    rig.tick(5, seconds=15.0)  # the window slides past the comparison finished 3,590 s ago
    live = rig.stats()["liveStats"]
    assert live["responseTime"] == pytest.approx(250.0) and live["errorRate"] == pytest.approx(50.0)
    rig.close()


def test_the_full_rate_only_while_something_needs_it(tmp_path, proc_root):
    """Nobody looking and no run: the idle rate, with a flush holding as many rows; the stats, history or conditions
    asked for, a stream client or a run measured: the full rate at once (a sample taken then), for a minute after
    the last request; and each sample keeps the interval it was taken at."""
    rig = Rig(tmp_path, proc_root)
    sampler, clock, ring = rig.sampler, rig.clock, rig.sampler.parts.ring
    rig.tick(5)

    def pace_after(seconds: float) -> tuple[float, tuple[str, ...]]:
        clock.advance(seconds)
        sampler.pace(clock.mono)
        rate = sampler.rate()
        return rate.hz, rate.full_because

    assert pace_after(0.0) == (1.0, ()) and sampler.flush_interval_s == 50.0
    for _ in range(5):
        rig.tick(5, seconds=1.0)
    held = ring.total
    sampler.demand.asked()
    assert pace_after(0.3) == (10.0, ("asked",)) and sampler.flush_interval_s == 5.0
    assert ring.total == held + 1  # sampled at once: the stats built next see now
    assert pace_after(59.0) == (10.0, ("asked",))
    assert pace_after(1.5) == (1.0, ())
    sampler.demand.stream_opened()
    assert pace_after(0.0) == (10.0, ("stream",))
    sampler.demand.stream_closed()
    assert pace_after(0.0) == (1.0, ())

    comparisons, now_ms = sampler.parts.comparisons, lambda: int(clock.wall * 1000)
    new = validate_new_comparison({"name": "a run", "models": ["m"], "status": "running"})
    record = rig.store.transaction(lambda con: comparisons.create(con, new, now_ms()))
    assert pace_after(0.0) == (10.0, ("measuring",))
    done = validate_update({"status": "completed"})
    rig.store.transaction(lambda con: comparisons.update(con, record["id"], done, now_ms()))
    assert pace_after(0.0) == (1.0, ())

    sampler.parts.flusher.flush()
    intervals = rig.store.read_now(lambda con: con.execute("SELECT list(interval_ms ORDER BY ts_ms) FROM samples"
                                                           ).fetchall()[0][0])
    assert intervals[1:6] == [1000] * 5 and intervals[6] == 300  # the idle stretch, then the sample at the switch
    rig.close()


def test_a_stretch_at_the_idle_rate_is_no_outage_and_history_says_its_rate(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for _ in range(30):
        rig.tick(5)  # 3 s at 10 Hz
    for _ in range(60):
        rig.tick(5, seconds=1.0)  # a minute at 1 Hz
    rig.sampler.parts.flusher.flush()
    assert rig.stats()["liveStats"]["uptime"] == 100
    now = rig.clock.wall
    query = parse_history_query({"metrics": ["sampleInterval"], "from": [str(now - 63)], "to": [str(now + 0.001)],
                                 "step": ["3s"]}, now)
    answer = rig.store.read_now(lambda con: run_history(con, query, None, None))
    means = [value for value in answer["series"]["sampleInterval"]["avg"] if value is not None]
    assert means[0] == pytest.approx(0.1, abs=0.05) and means[-1] == pytest.approx(1.0)
    rig.close()


def test_the_service_accounts_for_itself_as_it_accounts_for_a_run(tmp_path, proc_root):
    """RAPL at 40 W of package and 4 W of DRAM, the machine 50 % busy on 4 CPUs, the service's own CPU time growing
    0.02 s a 0.1 s tick (a tenth of the busy time) and its resident memory 1 % of the memory in use: it is given a
    tenth of the CPU's energy and 1 % of the memory's, said in the stats' meta, and a run's record says what share
    of the machine's energy over its window the service used."""
    tree = FakePowercap(tmp_path / "powercap", packages=1)
    (proc_root / "self").mkdir()
    (proc_root / "self" / "statm").write_text(f"90000 {122_880_000 // os.sysconf('SC_PAGE_SIZE')} 0 0 0 0 0\n")
    rig = Rig(tmp_path, proc_root, powercap=tmp_path / "powercap")
    package = dram = 0
    comparisons, now_ms = rig.sampler.parts.comparisons, lambda: int(rig.clock.wall * 1000)
    new = validate_new_comparison({"name": "a run", "models": ["m"], "status": "running"})
    done = validate_update({"status": "completed"})
    records: list[dict] = []
    for tick in range(50):
        package, dram = package + 4_000_000, dram + 400_000  # 4 J and 0.4 J a tick
        tree.set("intel-rapl:0", package)
        tree.set("intel-rapl:0:2", dram)
        rig.clock.process_cpu += 0.02
        rig.tick(50)
        if tick == 10:
            records.append(rig.store.transaction(lambda con: comparisons.create(con, new, now_ms())))
        if tick == 40:
            records.append(rig.store.transaction(lambda con: comparisons.update(con, records[0]["id"], done,
                                                                                now_ms())))  # noqa: B023
    footprint = rig.stats()["meta"]["footprint"]
    assert footprint["energyJ"] == pytest.approx(49 * (0.4 + 0.004), rel=0.01)  # the first tick has no CPU delta
    assert footprint["cpuS"] == pytest.approx(1.0) and footprint["residentBytes"] == 122_880_000
    assert sum(footprint["cpuByPartS"].values()) == pytest.approx(footprint["cpuS"], abs=1e-5)
    assert footprint["cpuByPartS"]["ticks"] > 0 and footprint["cpuByPartS"]["conditions"] > 0
    measurer = records[-1]["measurer"]
    assert measurer["machineEnergyJ"] == pytest.approx(30 * 4.4, rel=0.01)
    assert measurer["sharePct"] == pytest.approx(100 * 0.404 / 4.4, rel=0.01)
    rig.close()
