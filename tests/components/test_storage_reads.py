"""The read lanes of a real store: light reads never wait behind heavy ones, and heavy reads beyond the few
allowed at once are refused at once instead of queueing."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tsstats.storage.reads import MAX_HEAVY_IN_FLIGHT
from tsstats.storage.sql import ReadsBusy
from tsstats.storage.store import Store


def test_a_light_read_is_answered_while_the_heavy_lane_is_full_and_one_heavy_read_more_is_refused(tmp_path):
    store = Store(str(tmp_path / "r.duckdb"))
    release = threading.Event()

    def heavy(con):
        release.wait(10)  # a 7-day history over 16 metrics, say
        return con.execute("SELECT 1").fetchall()[0][0]

    async def scenario():
        running = [asyncio.ensure_future(store.read(heavy, heavy=True)) for _ in range(MAX_HEAVY_IN_FLIGHT)]
        await asyncio.sleep(0.1)
        with pytest.raises(ReadsBusy):
            await store.read(heavy, heavy=True)
        light = await asyncio.wait_for(store.read(lambda con: con.execute("SELECT 42").fetchall()[0][0]), 5)
        assert not any(task.done() for task in running)  # the light read did not wait for any of them
        release.set()
        assert await asyncio.gather(*running) == [1] * MAX_HEAVY_IN_FLIGHT
        assert await store.read(heavy, heavy=True) == 1  # room again
        return light

    try:
        assert asyncio.run(scenario()) == 42
    finally:
        release.set()
        store.close()
