"""Backups of a live store: each a self-contained DuckDB file, and two at once both made."""

from __future__ import annotations

import threading

import duckdb

from tsstats.storage.backup import copy_database
from tsstats.storage.store import Store

ROWS = 2_000_000  # enough that one copy is still running when the other starts


def test_two_backups_at_once_both_succeed(tmp_path):
    store = Store(str(tmp_path / "live.duckdb"))
    try:
        store.read_now(lambda con: con.execute(f"CREATE TABLE filler AS SELECT range AS x, random() AS y "
                                               f"FROM range({ROWS})"))
        started, errors = threading.Barrier(2), []
        copies = [str(tmp_path / f"copy-{number}.duckdb") for number in (1, 2)]

        def back_up(path: str) -> None:
            started.wait()
            try:
                store.read_now(lambda con: copy_database(con, path))
            except Exception as error:  # noqa: BLE001 - the test reports what the second copy met
                errors.append(error)

        threads = [threading.Thread(target=back_up, args=(path,)) for path in copies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
    finally:
        store.close()
    for path in copies:
        copy = duckdb.connect(path, read_only=True)
        try:
            assert copy.execute("SELECT count(*) FROM filler").fetchall() == [(ROWS,)]
            assert copy.execute("SELECT count(*) FROM comparisons").fetchall() == [(0,)]
        finally:
            copy.close()
