"""What the stats show of comparisons, and the models table's parts, are kept write by write: after any mix of
writes through the API (created, started, finished with figures, failed, cancelled, replaced, deleted, refused,
offsets), each equals what one pass over the table counts, and no write makes it count the table again."""

from __future__ import annotations

import dataclasses
import random
import time

import pytest

from tsstats.comparisons.models import ModelHours, model_table
from tsstats.comparisons.stats import TALLY_COLUMNS, ComparisonTally, TallyRow
from tsstats.storage.store import Store


def same(kept, counted) -> None:
    """Field by field, sums to the last few digits (a running sum and one pass add in another order)."""
    for field in dataclasses.fields(kept):
        assert getattr(kept, field.name) == pytest.approx(getattr(counted, field.name), rel=1e-9, nan_ok=True), \
            field.name


def test_the_tally_kept_write_by_write_equals_a_count_of_the_table(inprocess):
    service = inprocess()
    client = service.client()
    tally = service.service.comparisons.tally
    rng = random.Random(7)
    ids: list[int] = []
    refused = 0
    rebuilds = tally.rebuilds
    for _ in range(120):
        choice = rng.random()
        if choice < 0.35 or not ids:
            status = rng.choice(["queued", "running"])
            body = {"models": rng.sample(["a", "b", "c", "d"], rng.randint(1, 2)), "status": status}
            ids.append(client.post("/api/comparisons", json=body).json()["id"])
        elif choice < 0.75:
            chosen = rng.choice(ids)
            final = rng.choice(["running", "completed", "completed", "failed", "cancelled"])
            body = {"status": final}
            if final == "completed":
                body.update(accuracy=rng.uniform(50, 99), speed=rng.uniform(1, 30), latencyMs=rng.uniform(5, 500),
                            items=rng.choice([None, 100, 250]))
                body = {key: value for key, value in body.items() if value is not None}
            refused += client.patch(f"/api/comparisons/{chosen}", json=body).status_code == 409  # rolled back
        elif choice < 0.9:
            chosen = ids.pop(rng.randrange(len(ids)))
            assert client.delete(f"/api/comparisons/{chosen}").status_code == 204
        else:
            assert client.post("/api/offsets", json={"kg": round(rng.uniform(0.1, 2.0), 3)}).status_code == 201
    live = service.service.sampler.parts.publisher.request().result(10).figures
    counted = ComparisonTally(service.settings.activity_window)
    now_ms = time.time() * 1000
    service.service.store.read_now(lambda con: counted.refresh(con, now_ms))
    same(live.comparisons, counted.shown.counts)
    same(live.activity, counted.shown.activity)
    assert live.offsets_kg == pytest.approx(counted.shown.offsets_kg)
    assert refused > 0 and tally.rebuilds <= rebuilds + refused  # a refused write counts nothing again
    assert live.comparisons.completed > 0 and live.activity.finished > 0 and live.offsets_kg > 0


def same_table(kept: dict, counted: dict) -> None:
    """Two models tables alike: the same models, counts and figures (sums and means to the last few digits)."""
    assert (kept["models"], kept["omitted"]) == (counted["models"], counted["omitted"])
    assert [row["model"] for row in kept["items"]] == [row["model"] for row in counted["items"]]
    for mine, theirs in zip(kept["items"], counted["items"], strict=True):
        assert mine["runs"] == theirs["runs"] and mine["pareto"] == theirs["pareto"], mine["model"]
        for name in ("accuracy", "speed", "latencyMs", "energyPerRunJ", "energyPerItemJ", "carbonPerItemG",
                     "sciPerItemG"):
            assert alike(mine[name], theirs[name]), (mine["model"], name, mine[name], theirs[name])
        for name, spread in mine["spread"].items():
            for field, value in spread.items():
                assert alike(value, theirs["spread"][name][field]), (mine["model"], name, field, spread)


def alike(mine: float | None, theirs: float | None) -> bool:
    return mine == theirs if mine is None or theirs is None else mine == pytest.approx(theirs, rel=1e-6, abs=1e-9)


def test_the_models_table_from_parts_kept_write_by_write_equals_one_pass_over_the_table(inprocess):
    """Every write path hands its rows to the models table's parts: after a random mix of writes through the API,
    the table read from the parts (the current hour whole: the range ends after it) equals one SQL pass."""
    service = inprocess()
    client = service.client()
    hours = service.service.comparisons.hours
    rng = random.Random(11)
    ids: list[int] = []
    for _ in range(120):
        choice = rng.random()
        if choice < 0.4 or not ids:
            body = {"models": rng.sample(["a", "b", "c", "d"], rng.randint(1, 2)),
                    "status": rng.choice(["queued", "running"]), "items": rng.choice([10, 50])}
            ids.append(client.post("/api/comparisons", json=body).json()["id"])
        elif choice < 0.85:
            final = rng.choice(["running", "completed", "completed", "failed", "cancelled"])
            body = {"status": final}
            if final == "completed":
                body.update(accuracy=rng.uniform(50, 99), speed=rng.uniform(1, 30), latencyMs=rng.uniform(5, 500))
            client.patch(f"/api/comparisons/{rng.choice(ids)}", json=body)
        else:
            assert client.delete(f"/api/comparisons/{ids.pop(rng.randrange(len(ids)))}").status_code == 204
    service.service.sampler.parts.publisher.request().result(10)  # the writes are committed and counted
    now_ms = int(time.time() * 1000)
    rebuilds = hours.rebuilds
    for fair_only in (False, True):
        from_ms, to_ms = now_ms - 2 * 3_600_000, now_ms + 2 * 3_600_000
        assert hours.whole_hours(from_ms, to_ms, fair_only) is not None  # the parts are read, not SQL alone
        kept = service.service.store.read_now(model_table, from_ms, to_ms, fair_only, hours)
        counted = service.service.store.read_now(model_table, from_ms, to_ms, fair_only)
        same_table(kept, counted)
        assert counted["items"] and sum(row["runs"]["completed"] for row in counted["items"]) > 0
    assert hours.rebuilds == rebuilds and hours.rebuilds >= 1  # built once; the writes changed it part by part


def test_the_models_table_reads_whole_hours_from_the_parts_and_the_edges_from_sql(tmp_path):
    """Comparisons over ten hours, then updates each handed to the parts as a write hands them: for ranges
    beginning and ending anywhere within an hour, the table of parts plus edges equals one SQL pass."""
    store = Store(str(tmp_path / "hours.duckdb"))
    hour = 3_600_000
    base = 1_750_000_000_000 // hour * hour
    rng = random.Random(3)

    def fill(con) -> None:
        for number in range(400):
            status = rng.choice(["queued", "running", "completed", "completed", "failed", "cancelled"])
            finished = status in ("completed", "failed", "cancelled")
            con.execute(
                "INSERT INTO comparisons (name, models, status, created_ms, finished_ms, accuracy, speed, latency_ms, "
                "energy_kwh, carbon_kg, items, embodied_g, fair) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [f"run {number}", rng.sample(["m1", "m2", "m3"], rng.randint(1, 2)), status,
                 base + rng.randrange(10 * hour), None, rng.uniform(50, 99), rng.uniform(1, 9), rng.uniform(5, 50),
                 rng.uniform(1e-5, 1e-3) if finished else None, rng.choice([None, 1e-6]) if finished else None,
                 rng.choice([None, 10.0, 40.0]), rng.choice([None, 0.5]), rng.choice([None, True, False])])

    store.transaction(fill)
    hours = ModelHours()
    assert hours.whole_hours(base, base + 10 * hour, False) is None  # not built yet
    store.read_now(hours.refresh)
    assert hours.ready and hours.rebuilds == 1
    written = []

    def move(con) -> None:  # a write: the row before and after, handed over, counted once committed
        for comparison_id in rng.sample(range(1, 401), 60):
            before = con.execute(f"SELECT {TALLY_COLUMNS} FROM comparisons WHERE id = ?", [comparison_id]).fetchall()
            after = con.execute(f"UPDATE comparisons SET status = 'completed', accuracy = ?, energy_kwh = ?, "
                                f"items = 20, fair = ? WHERE id = ? RETURNING {TALLY_COLUMNS}",
                                [rng.uniform(10, 20), rng.uniform(1e-4, 2e-4), rng.choice([True, False]),
                                 comparison_id]).fetchall()
            written.append((TallyRow.of(before[0]), TallyRow.of(after[0])))
        deleted = con.execute(f"DELETE FROM comparisons WHERE id = 400 RETURNING {TALLY_COLUMNS}").fetchall()
        written.append((TallyRow.of(deleted[0]), None))

    store.transaction(move)
    hours.apply(written)
    whole = 0
    for _ in range(12):
        from_ms = base + rng.randrange(-hour, 5 * hour)
        to_ms = from_ms + rng.randrange(0, 8 * hour)
        fair_only = rng.random() < 0.5
        whole += hours.whole_hours(from_ms, to_ms, fair_only) is not None
        kept = store.read_now(model_table, from_ms, to_ms, fair_only, hours)
        counted = store.read_now(model_table, from_ms, to_ms, fair_only)
        same_table(kept, counted)
    assert whole >= 6  # most ranges hold whole hours, read from the parts
    store.close()
