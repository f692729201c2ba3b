"""A consistent copy of the database: DuckDB's COPY FROM DATABASE into a new file, from one snapshot of a
read cursor, so a running service keeps sampling and writing while it is made; the copy opens as any
tsstats database does (tables, data, sequences)."""

from __future__ import annotations

import os
import uuid

from tsstats.storage.sql import Connection


def backup_bytes(database_path: str) -> int:
    """About what a copy takes: the file and its WAL (a copy holds the same data, checkpointed)."""
    return sum(os.path.getsize(path) for path in (database_path, database_path + ".wal") if os.path.exists(path))


def copy_database(con: Connection, path: str) -> None:
    """Copy the connection's database into a new file at ``path`` (which must not exist)."""
    source = con.execute("SELECT current_database()").fetchall()[0][0]
    literal = path.replace("'", "''")
    alias = f"tsstats_backup_{uuid.uuid4().hex}"  # an attachment is the database's, not the cursor's: one name each
    con.execute(f"ATTACH '{literal}' AS {alias} (READ_WRITE)")  # also from a read-only connection
    try:
        con.execute(f'COPY FROM DATABASE "{source}" TO {alias}')
        con.execute(f"CHECKPOINT {alias}")  # one self-contained file, no WAL beside it
    finally:
        con.execute(f"DETACH {alias}")
