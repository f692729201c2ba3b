"""What DuckDB holds in memory now, by what holds it (its buffer manager's tags: the block cache of base
tables, hash tables, the WAL, ...), read on a pool thread for ``/metrics`` and the soak benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from tsstats.storage.sql import Connection


@dataclass(frozen=True)
class DatabaseMemory:
    tag: str
    memory_bytes: int
    temporary_bytes: int  # spilled to the temporary directory


def database_memory(con: Connection) -> list[DatabaseMemory]:
    rows = con.execute("SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() "
                       "ORDER BY tag").fetchall()
    return [DatabaseMemory(str(tag), int(memory), int(temporary)) for tag, memory, temporary in rows]
