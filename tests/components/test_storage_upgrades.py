"""Files of every earlier schema version open with today's store on the default settings and keep every row; an
upgrade that cannot finish leaves the file exactly as it was, its version stamp included."""

from __future__ import annotations

import duckdb
import pytest
from support import old_files

from tsstats.storage import schema
from tsstats.storage.rollups import Rollups
from tsstats.storage.store import Store


def _dropped_or_derived(table: str, column: str) -> bool:
    return (table, column) in schema.DROPPED


def _assert_kept(before: dict, after: dict) -> None:
    """Every table of the old file is there with the same rows, every column it kept with the same values."""
    for table, (rows, columns) in before.items():
        assert table in after, table
        assert after[table][0] == rows, table
        for column, total in columns.items():
            if _dropped_or_derived(table, column):
                assert column not in after[table][1], (table, column)
                continue
            assert after[table][1][column] == total, (table, column)


def _columns(path) -> dict[str, list[tuple[str, str]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        found: dict[str, list[tuple[str, str]]] = {}
        for table, column, sql_type in con.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "ORDER BY table_name, ordinal_position").fetchall():
            found.setdefault(table, []).append((column, sql_type))
        return found
    finally:
        con.close()


@pytest.mark.parametrize("version", old_files.VERSIONS)
def test_a_file_of_each_earlier_version_upgrades_and_keeps_every_row(tmp_path, version):
    path = tmp_path / f"v{version}.duckdb"
    old_files.build(path, version, days=0.02, comparisons=120)
    before = old_files.fingerprint(path)
    assert old_files.stamped(path) == version

    Store(str(path)).close()

    assert old_files.stamped(path) == schema.SCHEMA_VERSION
    _assert_kept(before, old_files.fingerprint(path))
    assert _columns(path) == {table.name: list(table.columns) for table in schema.target().tables}
    Store(str(path)).close()  # and it opens again as it is
    assert schema.plan(duckdb.connect(str(path), read_only=True)) == []


def test_version_1_network_bytes_become_rates(tmp_path):
    path = tmp_path / "v1.duckdb"
    old_files.build(path, 1, days=0.001)
    con = duckdb.connect(str(path))
    con.execute("UPDATE samples SET rx_bytes = 1500, tx_bytes = 250, interval_ms = 100")
    con.close()

    Store(str(path)).close()

    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT DISTINCT rx_bps, tx_bps FROM samples").fetchall() == [(15000, 2500)]
    con.close()


def test_a_week_of_samples_upgrades_within_the_default_memory_limit(tmp_path):
    """Version 3 with 7 days of 10 Hz samples: 23 ADD COLUMNs in one transaction ran out of the 128 MB limit."""
    path = tmp_path / "week.duckdb"
    old_files.build(path, 3, days=7, comparisons=1000)
    before = old_files.fingerprint(path, ("samples", "comparisons"))

    Store(str(path)).close()  # memory_limit: the settings' default

    assert old_files.stamped(path) == schema.SCHEMA_VERSION
    _assert_kept(before, old_files.fingerprint(path, ("samples", "comparisons")))


def test_an_upgrade_that_cannot_finish_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "tight.duckdb"
    old_files.build(path, 3, days=2, comparisons=500)
    before = old_files.fingerprint(path)
    columns = _columns(path)

    with pytest.raises(Exception) as failed:
        Store(str(path), memory_limit="8MB")

    message = str(failed.value)
    assert "cannot upgrade" in message and "from schema version 3 to" in message and "left as it was" in message
    assert old_files.stamped(path) == 3
    assert _columns(path) == columns
    assert old_files.fingerprint(path) == before
    Store(str(path)).close()  # with room, the same file upgrades
    assert old_files.stamped(path) == schema.SCHEMA_VERSION


def test_a_file_without_rollups_is_caught_up_in_bounded_steps(tmp_path):
    """Version 1 kept no rollups: the minutes and hours of its samples are written an hour of samples at a time."""
    path = tmp_path / "v1.duckdb"
    old_files.build(path, 1, days=0.25)
    store = Store(str(path))
    try:
        rollups = Rollups()
        rollups.load(store.writer)
        transactions = []
        real = store.transaction
        store.transaction = lambda work: transactions.append(1) or real(work)  # type: ignore[method-assign]
        last = store.writer.execute("SELECT max(ts_ms) FROM samples").fetchall()[0][0]
        rollups.close(store, last + 60_000)
        minutes = store.writer.execute("SELECT count(*), sum(samples) FROM rollup_1m").fetchall()[0]
        hours = store.writer.execute("SELECT count(*) FROM rollup_1h").fetchall()[0][0]
    finally:
        store.close()
    assert minutes == (6 * 60, 6 * 60 * 600)
    assert hours == 6
    assert len(transactions) >= 6
