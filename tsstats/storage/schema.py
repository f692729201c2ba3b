"""The schema: ``schema.sql`` applied in one transaction at every start, and its version."""

from __future__ import annotations

from importlib import resources

import duckdb

from tsstats.storage.errors import StoreError
from tsstats.storage.rollups import missing_column_statements
from tsstats.storage.sql import Connection, first

SCHEMA_VERSION = 5


def schema_text() -> str:
    return resources.files("tsstats.storage").joinpath("schema.sql").read_text(encoding="utf-8")


def apply_schema(con: Connection, path: str) -> None:
    """Create what is missing; refuse a file written by a newer tsstats."""
    try:
        row = first(con.execute("SELECT value FROM schema_meta WHERE key = 'schema_version'").fetchall())
    except duckdb.CatalogException:
        row = None
    if row is not None and int(row[0]) > SCHEMA_VERSION:
        raise StoreError(f"database file {path} has schema version {row[0]}, newer than this "
                         f"tsstats understands ({SCHEMA_VERSION}); upgrade tsstats")
    con.execute("BEGIN")
    try:
        con.execute(schema_text())
        for statement in missing_column_statements(con):
            con.execute(statement)
        con.execute("INSERT OR REPLACE INTO schema_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
