"""Backups of a live store: each a self-contained DuckDB file, and two at once both made."""

from __future__ import annotations

import threading

import duckdb

from tsstats.storage.export import copy_database
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


def test_a_backup_of_90_days_of_minutes_fits_the_default_memory_limit(tmp_path):
    """129,600 rows of the 183-column minute tier (90 days, the default retention_1m): one COPY FROM DATABASE ran
    out of the 128 MB db_memory_limit building a row group of it; the copy has every row, sequence and index."""
    import duckdb as duck
    from support import old_files

    path = tmp_path / "minutes.duckdb"
    old_files.build(path, 5, days=0.01, comparisons=300)
    con = duck.connect(str(path))
    con.execute("DELETE FROM rollup_1m")
    old_files.fill(con, "rollup_1m", 90 * 1440, 60_000, old_files.START_MS)
    con.close()
    store = Store(str(path))  # memory_limit: the settings' default
    try:
        copy = tmp_path / "copy.duckdb"
        store.read_now(lambda cursor: copy_database(cursor, str(copy)))
    finally:
        store.close()
    assert old_files.fingerprint(copy) == old_files.fingerprint(path)
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["copy.duckdb", "minutes.duckdb"]
    restored = Store(str(copy))
    try:
        made = restored.transaction(lambda cursor: cursor.execute(
            "INSERT INTO comparisons (name, models, status, created_ms) VALUES ('next', ['m'], 'queued', 1) "
            "RETURNING id").fetchall())
    finally:
        restored.close()
    assert made == [(301,)]  # the sequence goes on where the original's was
