"""What the stats show of comparisons is kept write by write: after any mix of writes through the API (created,
started, finished with figures, failed, cancelled, replaced, deleted, refused, offsets), it equals what one pass
over the table counts, and no write makes it count the table again."""

from __future__ import annotations

import dataclasses
import random
import time

import pytest

from tsstats.comparisons.stats import ComparisonTally


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
    assert refused > 0 and tally.rebuilds <= rebuilds + refused  # only a rolled-back write counts the table again
    assert live.comparisons.completed > 0 and live.activity.finished > 0 and live.offsets_kg > 0
