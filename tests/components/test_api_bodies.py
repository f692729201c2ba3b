"""The wait for a write's commit: a request answered with an error commits nothing."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sanic.exceptions import SanicException

from tsstats.api.bodies import committed
from tsstats.storage.store import Store


def test_a_write_the_writer_has_not_begun_is_cancelled_by_the_503(tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    try:
        write = store.write(lambda con: con.execute("CREATE TABLE written (x INTEGER)"))
        with pytest.raises(SanicException) as refused:
            asyncio.run(committed(write, timeout_s=0.05))  # nobody runs the writes: the writer is "stuck"
        assert refused.value.status_code == 503 and "nothing was written" in str(refused.value)
        assert store.run_writes() == 1  # the writer comes back and skips it
        tables = store.read_now(lambda con: con.execute("SELECT count(*) FROM information_schema.tables "
                                                        "WHERE table_name = 'written'").fetchall())
        assert tables == [(0,)]
    finally:
        store.close()


def test_a_write_the_writer_has_begun_is_waited_for_and_answered(tmp_path):
    store = Store(str(tmp_path / "w.duckdb"))
    begun, release = threading.Event(), threading.Event()

    def slow(con):
        begun.set()
        release.wait(5)
        con.execute("CREATE TABLE written (x INTEGER)")
        return "done"

    try:
        write = store.write(slow)
        writer = threading.Thread(target=store.run_writes)
        writer.start()
        assert begun.wait(5)
        threading.Timer(0.2, release.set).start()  # finishes after the wait's time is up
        assert asyncio.run(committed(write, timeout_s=0.05)) == "done"
        writer.join(5)
    finally:
        store.close()
