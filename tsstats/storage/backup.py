"""A consistent copy of the database, made in bounded memory while the service keeps sampling and writing.

Two passes. First, inside one read transaction of the caller's cursor (one snapshot), every table is written to
Parquet parts beside the destination, at most ``PART_VALUES`` values a part, with the sequences' positions; a
read transaction writes no database, so nothing accumulates in memory. Then a database of its own opens the
destination, creates the tables and sequences as the source declares them, and loads the parts one statement
each, checkpointing as it goes. DuckDB's ``COPY FROM DATABASE`` (one statement) ran out of the 128 MB
``db_memory_limit`` on a file with 90 days of 1-minute rollups: a row group of a 183-column table is built
in memory whole. The copy opens as any tsstats database does (tables, data, sequences)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from tsstats.storage.sql import Connection, connect, sql_text

PART_VALUES = 2_000_000  # rows x columns in one Parquet part and one load statement (~16 MB of doubles)


def backup_bytes(database_path: str) -> int:
    """About what a copy takes: the file and its WAL (a copy holds the same data, checkpointed), and as much again
    for the parts while it is made, at most."""
    return 2 * sum(os.path.getsize(path) for path in (database_path, database_path + ".wal")
                   if os.path.exists(path))


@dataclass(frozen=True)
class Part:
    table: str
    path: str


def _snapshot(con: Connection, path: str, parts: list[Part]) -> tuple[list[str], list[str]]:
    """(CREATE SEQUENCE statements at their positions, CREATE TABLE statements) of one snapshot, its rows written
    to ``parts`` (each named there before it is written, so that a failure leaves none behind); the caller's
    cursor is in a transaction."""
    database = con.execute("SELECT current_database()").fetchall()[0][0]
    sequences = []
    for name, start, increment, last in con.execute(
            "SELECT sequence_name, start_value, increment_by, last_value FROM duckdb_sequences() "
            "WHERE database_name = ? AND schema_name = 'main' ORDER BY sequence_oid", [database]).fetchall():
        following = start if last is None else last + increment
        sequences.append(f'CREATE SEQUENCE "{name}" START {int(following)} INCREMENT BY {int(increment)}')
    tables = con.execute("SELECT table_name, sql, column_count FROM duckdb_tables() WHERE database_name = ? "
                         "AND schema_name = 'main' ORDER BY table_oid", [database]).fetchall()
    for table, _, columns in tables:
        rows_per_part = max(PART_VALUES // max(int(columns), 1), 1000)
        low, high = con.execute(f'SELECT min(rowid), max(rowid) FROM "{table}"').fetchall()[0]
        if low is None:
            continue
        for start in range(int(low), int(high) + 1, rows_per_part):
            part = Part(table, f"{path}.part{len(parts)}.parquet")
            parts.append(part)
            con.execute(f'COPY (SELECT * FROM "{table}" WHERE rowid >= {start} AND rowid < {start + rows_per_part}) '
                        f"TO {sql_text(part.path)} (FORMAT parquet, ROW_GROUP_SIZE {rows_per_part})")
    return sequences, [sql for _, sql, _ in tables]


def copy_database(con: Connection, path: str, memory_limit: str = "128MB", threads: int = 2) -> None:
    """Copy the connection's database into a new file at ``path`` (which must not exist), from one snapshot.
    ``memory_limit`` and ``threads``: the new database's, while it loads."""
    parts: list[Part] = []
    try:
        con.execute("BEGIN TRANSACTION READ ONLY")
        try:
            sequences, tables = _snapshot(con, path, parts)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        copy = connect(path, memory_limit, threads)
        try:
            for statement in sequences + tables:
                copy.execute(statement)
            for number, part in enumerate(parts):
                copy.execute(f'INSERT INTO "{part.table}" SELECT * FROM read_parquet({sql_text(part.path)})')
                os.unlink(part.path)
                if number % 8 == 7:
                    copy.execute("CHECKPOINT")  # committed rows leave memory for the file
            copy.execute("CHECKPOINT")  # one self-contained file, no WAL beside it
        finally:
            copy.close()
    finally:
        for part in parts:
            if os.path.exists(part.path):
                os.unlink(part.path)
