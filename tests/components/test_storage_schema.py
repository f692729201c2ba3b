"""schema.sql declares exactly the columns that the row definitions and the history catalog describe."""

from __future__ import annotations

from tsstats.storage.rollups import tier_columns
from tsstats.storage.rows import GPU_ROW, HOST_ROW
from tsstats.storage.store import Store


def described(store: Store, table: str) -> list[tuple[str, str]]:
    return store.read_now(lambda con: [(row[0], row[1]) for row in con.execute(f"DESCRIBE {table}").fetchall()])


def test_sample_tables_match_the_row_definitions(tmp_path):
    store = Store(str(tmp_path / "schema.duckdb"))
    try:
        for spec in (HOST_ROW, GPU_ROW):
            assert described(store, spec.table) == [(field.stored, field.sql_type) for field in spec.fields]
    finally:
        store.close()


def test_rollup_tables_match_the_catalog(tmp_path):
    store = Store(str(tmp_path / "schema.duckdb"))
    try:
        for table, gpu in (("rollup_1m", False), ("rollup_1h", False), ("gpu_rollup_1m", True),
                           ("gpu_rollup_1h", True)):
            assert described(store, table) == tier_columns(gpu), table
    finally:
        store.close()
