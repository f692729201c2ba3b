"""A consistent copy of the database: DuckDB's COPY FROM DATABASE into a new file, from one snapshot of a
read cursor, so a running service keeps sampling and writing while it is made; the copy opens as any
tsstats database does (tables, data, sequences)."""

from __future__ import annotations

from tsstats.storage.sql import Connection

ALIAS = "tsstats_backup"


def copy_database(con: Connection, path: str) -> None:
    """Copy the connection's database into a new file at ``path`` (which must not exist)."""
    source = con.execute("SELECT current_database()").fetchall()[0][0]
    literal = path.replace("'", "''")
    con.execute(f"ATTACH '{literal}' AS {ALIAS} (READ_WRITE)")  # also from a read-only connection
    try:
        con.execute(f'COPY FROM DATABASE "{source}" TO {ALIAS}')
        con.execute(f"CHECKPOINT {ALIAS}")  # one self-contained file, no WAL beside it
    finally:
        con.execute(f"DETACH {ALIAS}")
