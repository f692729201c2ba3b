"""History: tiers written through the sampler's write path, checked against numpy on the same samples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from support.nvml import FakeGpu, fake_nvml
from support.sampler_rig import Rig

from tsstats.core.inputs import InputError
from tsstats.core.units import HOUR_MS, MINUTE_MS
from tsstats.sampling.flushing import write_batch
from tsstats.storage.history import (
    MAX_POINTS,
    PendingRows,
    nice_step,
    parse_history_query,
    run_history,
    tier_plan,
    to_csv,
)
from tsstats.storage.retention import RetentionPolicy, enforce_retention
from tsstats.storage.rollups import Rollups
from tsstats.storage.rows import GPU_ROW, HOST_ROW, empty_columns
from tsstats.storage.store import Store

HOUR0 = 1_800_000_000_000 // HOUR_MS * HOUR_MS  # an hour boundary
GAP = (HOUR0 + 75 * MINUTE_MS, HOUR0 + 95 * MINUTE_MS)  # twenty minutes without samples


def make_columns(ts: np.ndarray, rng: np.random.Generator) -> tuple[dict, dict]:
    n = len(ts)
    columns = empty_columns(HOST_ROW, n)
    cpu = np.round(rng.uniform(0, 100, n), 1)
    columns.update(ts_ms=ts, interval_s=np.full(n, 0.1), cpu_pct=cpu, mem_pct=np.round(rng.uniform(20, 80, n), 1),
                   load1=np.round(rng.uniform(0, 8, n), 2), logical_cpus=np.full(n, 4.0),
                   tcp_estab=rng.integers(0, 50, n).astype(float), rx_bps=rng.integers(0, 10_000, n).astype(float),
                   tx_bps=rng.integers(0, 10_000, n).astype(float),
                   cpu_j=np.round((10 + cpu / 2) * 0.1, 3), mem_j=np.full(n, 1.0),
                   methods=np.zeros(n))
    # latency only every 20th sample, as the probe reports every 2 s
    columns["latency_ms"] = np.where(np.arange(n) % 20 == 0, np.round(rng.uniform(1, 50, n), 3), np.nan)
    util = np.round(rng.uniform(0, 100, n))
    gpu = {"ts_ms": ts, "gpu": np.zeros(n), "util_pct": util, "mem_used_bytes": np.full(n, 2.0**30),
           "power_w": np.round(50 + util, 3), "temp_c": np.full(n, 60.0), "sm_clock_mhz": np.round(800 + util * 10),
           "memory_clock_mhz": np.full(n, 2619.0), "fan_pct": np.full(n, np.nan),
           "throttle_mask": np.where(util > 90, 4.0, 0.0)}
    columns["gpu_pct"] = util
    return columns, {name: gpu[name] for name in GPU_ROW.names}


@pytest.fixture(scope="module")
def history_store(tmp_path_factory):
    """Three hours and ten minutes of 10 Hz samples with a gap, written flush by flush."""
    store, rollups = fresh_store(tmp_path_factory.mktemp("history") / "history.duckdb")
    rng = np.random.default_rng(7)
    ts = np.arange(HOUR0, HOUR0 + 190 * MINUTE_MS, 100.0)
    ts = ts[(ts < GAP[0]) | (ts >= GAP[1])]
    for start in range(0, len(ts), 3000):  # a flush every five minutes of samples
        columns, gpu = make_columns(ts[start:start + 3000], rng)
        write_batch(store, rollups, columns, gpu)
    yield store, rollups
    store.close()


def fresh_store(path) -> tuple[Store, Rollups]:
    store = Store(str(path))
    rollups = Rollups()
    rollups.load(store.writer)
    return store, rollups


def stored(store: Store, expression: str, table: str = "samples") -> tuple[np.ndarray, np.ndarray]:
    rows = store.read_now(lambda con: con.execute(f"SELECT ts_ms, {expression} FROM {table} ORDER BY ts_ms"
                                                  ).fetchall())
    ts = np.array([row[0] for row in rows], dtype=float)
    values = np.array([np.nan if row[1] is None else row[1] for row in rows], dtype=float)
    return ts, values


def expected(ts, values, start, step, buckets, aggregate):
    out = []
    for i in range(buckets):
        inside = (ts >= start + i * step) & (ts < start + (i + 1) * step) & np.isfinite(values)
        if not inside.any():
            out.append(None)
            continue
        chosen = values[inside]
        out.append({"avg": chosen.mean(), "min": chosen.min(), "max": chosen.max(), "last": chosen[-1]}[aggregate])
    return out


def query(store, rollups, **params):
    args = {key: [str(value)] for key, value in params.items()}
    parsed = parse_history_query(args, now_s=(HOUR0 + 190 * MINUTE_MS) / 1000)
    return parsed, store.read_now(run_history, parsed, rollups.minutes_until, rollups.hours_until)


def assert_series(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None
        else:
            assert g == pytest.approx(w, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("step, tier", [("15s", "raw"), ("1m", "1m"), ("5m", "1m"), ("1h", "1h"), ("7s", "raw")])
@pytest.mark.parametrize("name, expression", [
    ("cpuUsage", "cpu_pm / 10.0"), ("systemLoad", "load1_c / logical_cpus"),
    ("networkLatency", "latency_us / 1000.0"), ("networkReceive", "rx_bps"),
    ("power", "(cpu_mj + coalesce(gpu_mj, 0) + mem_mj) * 1.0 / interval_ms"),
])
def test_every_aggregate_matches_numpy(history_store, step, tier, name, expression):
    store, rollups = history_store
    parsed, answer = query(store, rollups, metrics=name, agg="avg,min,max,last", step=step,
                           **{"from": (HOUR0 + 3 * MINUTE_MS) / 1000, "to": (HOUR0 + 188 * MINUTE_MS + 500) / 1000})
    assert answer["tier"] == tier and parsed.tier == tier
    ts, values = stored(store, expression)
    for aggregate in ("avg", "min", "max", "last"):
        want = expected(ts, values, parsed.start_ms, parsed.step_ms, parsed.buckets, aggregate)
        assert_series(answer["series"][name][aggregate], want)


def test_per_gpu_series_match_numpy(history_store):
    store, rollups = history_store
    parsed, answer = query(store, rollups, metrics="gpu0Usage,gpu0Power", agg="avg,max", step="1h",
                           **{"from": HOUR0 / 1000, "to": (HOUR0 + 190 * MINUTE_MS) / 1000})
    ts, util = stored(store, "util_pm / 10.0", "gpu_samples")
    assert_series(answer["series"]["gpu0Usage"]["avg"], expected(ts, util, parsed.start_ms, HOUR_MS, 4, "avg"))
    ts, power = stored(store, "power_mw / 1000.0", "gpu_samples")
    assert_series(answer["series"]["gpu0Power"]["max"], expected(ts, power, parsed.start_ms, HOUR_MS, 4, "max"))


def test_gpu_throttled_share_and_clocks_match_numpy(history_store):
    store, rollups = history_store
    parsed, answer = query(store, rollups, metrics="gpu0Throttled,gpu0SmClock", agg="avg,max", step="1m",
                           **{"from": HOUR0 / 1000, "to": (HOUR0 + 190 * MINUTE_MS) / 1000})
    ts, throttled = stored(store, "CASE WHEN throttle_mask & 4 <> 0 THEN 100.0 ELSE 0.0 END", "gpu_samples")
    assert_series(answer["series"]["gpu0Throttled"]["avg"],
                  expected(ts, throttled, parsed.start_ms, MINUTE_MS, parsed.buckets, "avg"))
    ts, clock = stored(store, "sm_clock_mhz", "gpu_samples")
    assert_series(answer["series"]["gpu0SmClock"]["max"],
                  expected(ts, clock, parsed.start_ms, MINUTE_MS, parsed.buckets, "max"))


def test_buckets_are_aligned_and_gaps_are_null(history_store):
    store, rollups = history_store
    parsed, answer = query(store, rollups, metrics="cpuUsage", step="5m",
                           **{"from": (HOUR0 + 61 * MINUTE_MS + 1234) / 1000, "to": (HOUR0 + 120 * MINUTE_MS) / 1000})
    assert all(t % (5 * MINUTE_MS) == 0 for t in answer["timestamps"])
    assert answer["timestamps"][0] == HOUR0 + 60 * MINUTE_MS  # the bucket that holds `from`
    values = dict(zip(answer["timestamps"], answer["series"]["cpuUsage"]["avg"], strict=True))
    for t, value in values.items():
        in_gap = GAP[0] <= t and t + 5 * MINUTE_MS <= GAP[1]
        assert (value is None) == in_gap, t
    # polling later keeps the same bucket times
    _, later = query(store, rollups, metrics="cpuUsage", step="5m",
                     **{"from": (HOUR0 + 62 * MINUTE_MS) / 1000, "to": (HOUR0 + 121 * MINUTE_MS) / 1000})
    assert later["timestamps"][:len(answer["timestamps"])] == answer["timestamps"]


def test_energy_counter_is_cumulative(history_store):
    store, rollups = history_store
    _, answer = query(store, rollups, metrics="cpuEnergy", agg="last", step="1h",
                      **{"from": HOUR0 / 1000, "to": (HOUR0 + 190 * MINUTE_MS) / 1000})
    ts, joules = stored(store, "cpu_mj / 1000.0")
    for i, value in enumerate(answer["series"]["cpuEnergy"]["last"]):
        assert value == pytest.approx(joules[ts < HOUR0 + (i + 1) * HOUR_MS].sum(), rel=1e-9)


def test_tier_choice_and_plan():
    assert nice_step(3_600_000, 300) == 15_000
    assert nice_step(30 * 86_400_000, 1000) == HOUR_MS
    assert nice_step(86_400_000, 1000) == 120_000
    assert tier_plan("1h", 0, 10 * HOUR_MS, 9 * HOUR_MS + 5 * MINUTE_MS, 9 * HOUR_MS) == [
        ("1h", 0, 9 * HOUR_MS), ("1m", 9 * HOUR_MS, 9 * HOUR_MS + 5 * MINUTE_MS),
        ("raw", 9 * HOUR_MS + 5 * MINUTE_MS, 10 * HOUR_MS)]
    assert tier_plan("raw", 5, 10, 0, 0) == [("raw", 5, 10)]


def test_point_limit_and_points():
    now = HOUR0 / 1000
    parsed = parse_history_query({"metrics": ["cpuUsage"], "from": ["-1h"], "points": [str(MAX_POINTS)]}, now)
    assert parsed.buckets <= MAX_POINTS
    with pytest.raises(InputError) as raised:
        parse_history_query({"metrics": ["cpuUsage"], "from": ["-1d"], "step": ["1s"]}, now)
    assert raised.value.field == "step"
    with pytest.raises(InputError) as raised:
        parse_history_query({"metrics": ["cpuUsage"], "points": ["11001"]}, now)
    assert raised.value.field == "points"
    exact = parse_history_query({"metrics": ["cpuUsage"], "from": [str(now - 11_000)], "to": [str(now)],
                                 "step": ["1s"]}, now)
    assert exact.buckets == MAX_POINTS


@pytest.mark.parametrize("value, expected_ms", [
    ("now", 1_800_000_000_500), ("-30s", 1_799_999_970_500), ("-15m", 1_799_999_100_500),
    ("-1h", 1_799_996_400_500), ("-7d", 1_799_395_200_500), ("1800000000", 1_800_000_000_000),
    ("1800000000.25", 1_800_000_000_250), ("2027-01-15T08:00:00Z", 1_800_000_000_000),
    ("2027-01-15T09:00:00+01:00", 1_800_000_000_000), ("2027-01-15T08:00:00.5Z", 1_800_000_000_500)])
def test_every_time_form(value, expected_ms):
    now = 1_800_000_000.5
    parsed = parse_history_query({"metrics": ["cpuUsage"], "from": [value], "to": ["2099-01-01T00:00:00Z"]}, now)
    assert parsed.from_ms == expected_ms


@pytest.mark.parametrize("args, field", [
    ({"metrics": ["cpuUsage,bogus"]}, "metrics"), ({}, "metrics"), ({"metrics": ["cpuUsage,cpuUsage"]}, "metrics"),
    ({"metrics": ["cpuUsage"], "agg": ["mean"]}, "agg"), ({"metrics": ["cpuUsage"], "from": ["yesterday"]}, "from"),
    ({"metrics": ["cpuUsage"], "to": ["2027-02-30T00:00:00Z"]}, "to"),
    ({"metrics": ["cpuUsage"], "from": ["now"], "to": ["-1h"]}, "from"),
    ({"metrics": ["cpuUsage"], "step": ["0s"]}, "step"), ({"metrics": ["cpuUsage"], "step": ["-5s"]}, "step"),
    ({"metrics": ["cpuUsage"], "points": ["0"]}, "points"), ({"metrics": ["cpuUsage"], "points": ["ten"]}, "points"),
    ({"metrics": ["cpuUsage"], "points": ["10"], "step": ["1m"]}, "step"),
    ({"metrics": ["cpuUsage"], "format": ["xml"]}, "format"), ({"metrics": ["cpuUsage"], "limit": ["5"]}, "limit"),
    ({"metrics": ["cpuUsage"], "agg": ["avg", "max"]}, "agg"), ({"metrics": ["gpu99Usage"]}, "metrics"),
])
def test_bad_parameters_name_themselves(args, field):
    with pytest.raises(InputError) as raised:
        parse_history_query(args, 1_800_000_000.0, known_gpus={0, 1})
    assert raised.value.status == 400 and raised.value.field == field


def test_csv_matches_json(history_store):
    store, rollups = history_store
    parsed, answer = query(store, rollups, metrics="cpuUsage,memoryUsage", agg="avg,last", step="10m",
                           **{"from": (HOUR0 + 60 * MINUTE_MS) / 1000, "to": (HOUR0 + 120 * MINUTE_MS) / 1000})
    lines = to_csv(answer, parsed.aggregates).splitlines()
    assert lines[0] == "timestamp,cpuUsage_avg,cpuUsage_last,memoryUsage_avg,memoryUsage_last"
    assert len(lines) == 1 + len(answer["timestamps"])
    for line, t, avg in zip(lines[1:], answer["timestamps"], answer["series"]["cpuUsage"]["avg"], strict=True):
        cells = line.split(",")
        assert int(cells[0]) == t
        assert (cells[1] == "") if avg is None else math.isclose(float(cells[1]), avg)


def test_rollups_rebuild_after_a_crash(tmp_path):
    """Samples written but buckets not closed (a crash): the next load closes exactly the missing ones."""
    store, rollups = fresh_store(tmp_path / "crash.duckdb")
    rng = np.random.default_rng(3)
    ts = np.arange(HOUR0, HOUR0 + 30 * MINUTE_MS, 100.0)
    columns, _ = make_columns(ts, rng)
    write_batch(store, rollups, {k: v[:6000] for k, v in columns.items()})  # ten minutes, then closing
    store.transaction(lambda con: store.insert_rows(HOST_ROW, {k: v[6000:] for k, v in columns.items()}))
    minutes_before = store.read_now(lambda con: con.execute("SELECT count(*) FROM rollup_1m").fetchall()[0][0])
    assert minutes_before == 9  # minute 10 was open when the rest arrived without a close
    again = Rollups()
    again.load(store.writer)
    again.close(store, HOUR0 + 90 * MINUTE_MS)
    rows = store.read_now(lambda con: con.execute("SELECT bucket_ms, samples, cpu_sum FROM rollup_1m ORDER BY 1"
                                                  ).fetchall())
    assert [r[0] for r in rows] == [HOUR0 + i * MINUTE_MS for i in range(30)]
    assert all(r[1] == 600 for r in rows)
    ts_stored, cpu = stored(store, "cpu_pm / 10.0")
    for bucket, _, total in rows:
        inside = (ts_stored >= bucket) & (ts_stored < bucket + MINUTE_MS)
        assert total == pytest.approx(cpu[inside].sum())
    store.close()


def test_retention_removes_exactly_what_it_should(tmp_path):
    store, rollups = fresh_store(tmp_path / "retention.duckdb")
    rng = np.random.default_rng(5)
    day = 86_400_000
    now = HOUR0 + 10 * day
    # one sample a minute for ten days
    ts = np.arange(HOUR0, now, MINUTE_MS, dtype=float)
    columns, gpu = make_columns(ts, rng)
    write_batch(store, rollups, columns, gpu)
    rollups.close(store, now)
    policy = RetentionPolicy(raw_s=3 * 86_400, minute_s=5 * 86_400, hour_s=8 * 86_400)
    while store.transaction(lambda con: enforce_retention(con, policy, now, rollups.minutes_until)):
        pass

    def oldest(table, column):
        return store.read_now(lambda con: con.execute(f"SELECT min({column}), count(*) FROM {table}").fetchall()[0])

    assert oldest("samples", "ts_ms")[0] == now - 3 * day
    assert oldest("gpu_samples", "ts_ms")[0] == now - 3 * day
    assert oldest("rollup_1m", "bucket_ms")[0] == now - 5 * day
    assert oldest("rollup_1h", "bucket_ms")[0] == now - 8 * day
    assert oldest("samples", "ts_ms")[1] == 3 * 24 * 60
    store.close()


def test_a_retention_pass_deletes_the_oldest_rows_a_bounded_number_at_a_time(tmp_path, monkeypatch):
    """A pass deletes the oldest span of time that held about RETENTION_ROWS rows the pass before (an hour at
    first), and finds each table's oldest time once, not on every pass."""
    from tsstats.storage import retention

    monkeypatch.setattr(retention, "RETENTION_ROWS", 1000)
    store, rollups = fresh_store(tmp_path / "passes.duckdb")
    now = HOUR0 + 2 * 86_400_000
    ts = np.arange(HOUR0, now, 10_000.0)  # a sample every 10 s for two days: 17,280 rows
    columns, gpu = make_columns(ts, np.random.default_rng(3))
    write_batch(store, rollups, columns, gpu)
    rollups.close(store, now)
    policy = retention.RetentionPolicy(raw_s=86_400, minute_s=90 * 86_400, hour_s=5 * 365 * 86_400)
    floors = retention.Floors()
    passes = []
    while deleted := store.transaction(lambda con: retention.enforce_retention(con, policy, now,
                                                                                 rollups.minutes_until, floors)):
        passes.append(deleted)
    left = store.read_now(lambda con: con.execute("SELECT min(ts_ms), count(*) FROM samples").fetchall()[0])
    assert left == (now - 86_400_000, 8640) and sum(passes) == 2 * 8640  # samples and their GPU rows
    assert passes[0] == 2 * 360  # an hour of samples and of their GPU rows
    assert max(passes[1:]) <= 2 * 1010 and len(passes) <= 11  # then about the oldest 1,000 of each table a pass
    assert floors.scans == len(retention.retention_deletes(policy, now, None))  # one scan a table, at the first


def test_size_cap_deletes_the_oldest_first(tmp_path):
    from tsstats.storage.retention import enforce_size_cap, used_bytes

    store, rollups = fresh_store(tmp_path / "cap.duckdb")
    rng = np.random.default_rng(9)
    ts = np.arange(HOUR0, HOUR0 + 24 * HOUR_MS, 100.0)  # a day: row groups (whose blocks are freed) are 3.4 h
    for start in range(0, len(ts), 36_000):
        columns, gpu = make_columns(ts[start:start + 36_000], rng)
        write_batch(store, rollups, columns, gpu)
    store.checkpoint()
    full = used_bytes(store.writer)
    cap = full * 0.7
    rounds = 0
    while store.transaction(lambda con: enforce_size_cap(con, cap, rollups.minutes_until)):
        store.checkpoint()
        rounds += 1
    assert rounds >= 1 and used_bytes(store.writer) <= cap
    oldest, newest = store.read_now(lambda con: con.execute("SELECT min(ts_ms), max(ts_ms) FROM samples").fetchall()[0])
    assert oldest > HOUR0 and newest == ts[-1]  # the oldest raw hours went first, the newest stayed
    assert oldest % HOUR_MS == 0 and oldest < HOUR0 + 20 * HOUR_MS
    minutes = store.read_now(lambda con: con.execute("SELECT min(bucket_ms) FROM rollup_1m").fetchall()[0][0])
    assert minutes == HOUR0  # rollups are kept while raw samples can go
    store.close()


def pending(rig: Rig) -> PendingRows:
    return PendingRows(host=HOST_ROW.to_stored(rig.sampler.pending_columns()),
                       gpu=GPU_ROW.to_stored(rig.sampler.pending_gpu_columns()))


def history(rig: Rig, rows: PendingRows | None) -> dict:
    query = parse_history_query({"metrics": ["cpuUsage,gpu0Usage,energy"], "from": ["-8s"], "step": ["1s"],
                                 "agg": ["avg,min,max,last"]}, now_s=rig.clock.wall, known_gpus={0})
    rollups = rig.sampler.parts.flusher.rollups
    return rig.store.read_now(run_history, query, rollups.minutes_until, rollups.hours_until, rows)


def test_the_last_seconds_come_from_the_ring_as_they_will_from_the_table(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root, nvml=fake_nvml([FakeGpu(util=40)]))
    for i in range(80):  # 8 s at 10 Hz, none of it flushed
        rig.tick(cpu_pct=10 + i % 7)
    assert len(rig.sampler.pending_columns()["ts_ms"]) >= 70
    stored_only = history(rig, None)
    live = history(rig, pending(rig))
    counts = [v for v in live["series"]["cpuUsage"]["avg"][-4:]]
    assert all(value is not None for value in counts)  # the last seconds have their values now
    assert sum(v is not None for v in stored_only["series"]["cpuUsage"]["avg"][-4:]) < 4
    assert all(value is not None for value in live["series"]["gpu0Usage"]["max"][-4:])
    rig.sampler.parts.flusher.flush()
    flushed = history(rig, pending(rig))  # nothing pending now: all from the table
    assert flushed["series"] == live["series"] and flushed["timestamps"] == live["timestamps"]
    rig.close()


def test_rows_stored_since_the_ring_was_copied_are_counted_once(tmp_path, proc_root):
    rig = Rig(tmp_path, proc_root)
    for i in range(40):
        rig.tick(cpu_pct=20 + i % 5)
    copied = pending(rig)  # what a read thread copied, just before a flush committed
    rig.sampler.parts.flusher.flush()
    twice = history(rig, copied)
    once = history(rig, None)
    assert twice["series"] == once["series"]
    rig.close()
