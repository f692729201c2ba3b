"""The schema and its upgrades: a file of any earlier version becomes this version's in one transaction, or
stays exactly as it was.

The target is what ``schema.sql`` (with the rollup columns of the metrics catalog) builds in an empty database:
its tables, their columns in order, their constraints. Opening a file compares each of its tables with the
target's. A missing table (or sequence) is created; a table whose columns differ is rebuilt: a new table of the
target's definition is filled from the old one by one ``INSERT ... SELECT`` (columns matched by name, a renamed
column through ``DERIVED``, a column the file lacks as NULL), the old table dropped and the new one renamed.
``ALTER TABLE ... ADD COLUMN`` is not used on a file's tables: two dozen of them on a week of samples in one
transaction held every column's copy in memory and ran out of the 128 MB ``db_memory_limit``, where an
``INSERT ... SELECT`` streams row groups to the file whatever the table's size.

Everything happens in one transaction, the version stamp last: an upgrade that fails (memory, disk, a kill -9)
leaves nothing of itself, and the release that wrote the file still opens it. Columns that a later version
dropped are not carried over (``DROPPED`` says why each loses nothing). docs/operations.md says what a user can
rely on. Runs on the thread that opens the store, before anything else uses the file.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources

import duckdb

from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH
from tsstats.storage.rollups import missing_column_statements
from tsstats.storage.sql import Connection, StoreError, first

log = logging.getLogger("tsstats.store")

SCHEMA_VERSION = 7
UPGRADE_SUFFIX = "__upgrade"

# A column of today's schema that an earlier file holds under another name or in another unit: its value from
# the old columns (used only where the old table lacks the column and has every column the expression reads).
DERIVED: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    # version 1 stored the bytes of each tick's interval; version 2 the rate over the last second
    ("samples", "rx_bps"): ("CAST(round(rx_bytes * 1000.0 / nullif(interval_ms, 0)) AS BIGINT)",
                            ("rx_bytes", "interval_ms")),
    ("samples", "tx_bps"): ("CAST(round(tx_bytes * 1000.0 / nullif(interval_ms, 0)) AS BIGINT)",
                            ("tx_bytes", "interval_ms")),
}

# A table an upgrade creates that starts from the rows an earlier version kept (run when it is created in a file
# that has the rows; a new file has none).
FILLED_FROM_EARLIER: dict[str, str] = {
    "model_counters": (
        "INSERT INTO model_counters SELECT model, "
        "count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running'), "
        "count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'), "
        "count(*) FILTER (WHERE status = 'cancelled'), "
        "count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), "
        "coalesce(sum(energy_kwh) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), 0) "
        f"* {JOULES_PER_KWH!r}, "
        "max(greatest(created_ms, coalesce(finished_ms, 0))), "
        "coalesce(sum(items) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), 0), "
        f"coalesce(sum(carbon_kg) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')), 0) * {GRAMS_PER_KG!r} "
        "FROM (SELECT unnest(models) AS model, status, energy_kwh, created_ms, finished_ms, items, carbon_kg "
        "FROM comparisons) "
        "GROUP BY model"),
}

# Columns of earlier versions that today's schema does not have, and why leaving them out loses nothing.
DROPPED: dict[tuple[str, str], str] = {
    ("samples", "cpu_mw"): "power is the interval's energy over its length (cpu_mj / interval_ms)",
    ("samples", "gpu_mw"): "power is the interval's energy over its length (gpu_mj / interval_ms)",
    ("samples", "mem_mw"): "power is the interval's energy over its length (mem_mj / interval_ms)",
    ("samples", "rx_bytes"): "kept as rx_bps, bytes per second",
    ("samples", "tx_bytes"): "kept as tx_bps, bytes per second",
    ("gpu_samples", "energy_mj"): "the GPUs' energy is in samples.gpu_mj, all GPUs together",
    ("comparisons", "attribution"): "it is 'process' exactly when pids is set, as records give it",
}


def schema_text() -> str:
    return resources.files("tsstats.storage").joinpath("schema.sql").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Table:
    name: str
    create_sql: str  # DuckDB's own CREATE TABLE statement for it
    columns: tuple[tuple[str, str], ...]  # (name, type) in order


@dataclass(frozen=True)
class Target:
    """What this version's schema holds: its sequences (CREATE statements) and tables, in creation order."""

    sequences: tuple[tuple[str, str], ...]
    tables: tuple[Table, ...]


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, Table]:
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, sql_type in con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall():
        columns.setdefault(table, []).append((column, sql_type))
    return {name: Table(name, sql, tuple(columns.get(name, ())))
            for name, sql in con.execute("SELECT table_name, sql FROM duckdb_tables() WHERE schema_name = 'main' "
                                         "ORDER BY table_oid").fetchall()}


@cache
def target() -> Target:
    """This version's schema, as built by ``schema.sql`` and the catalog's rollup columns in an empty database."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(schema_text())
        for statement in missing_column_statements(con):  # metrics the catalog added after the tables' first ones
            con.execute(statement)
        sequences = tuple(con.execute("SELECT sequence_name, sql FROM duckdb_sequences() ORDER BY sequence_oid"
                                      ).fetchall())
        return Target(sequences, tuple(_tables(con).values()))
    finally:
        con.close()


def stamped_version(con: Connection) -> int | None:
    """The version a file says it has; None for a new file."""
    try:
        row = first(con.execute("SELECT value FROM schema_meta WHERE key = 'schema_version'").fetchall())
    except duckdb.CatalogException:
        return None
    return int(row[0]) if row is not None else None


@dataclass(frozen=True)
class Step:
    """One change of an upgrade: create a missing table or sequence, or rebuild a table."""

    table: str
    kind: str  # "sequence", "create" or "rebuild"
    rows: int = 0


def plan(con: Connection, present: dict[str, Table] | None = None) -> list[Step]:
    """What makes the file's schema this version's (empty when it is already); ``present``: the file's tables,
    when read already."""
    wanted = target()
    present = _tables(con) if present is None else present
    sequences = {row[0] for row in con.execute("SELECT sequence_name FROM duckdb_sequences()").fetchall()}
    steps = [Step(name, "sequence") for name, _ in wanted.sequences if name not in sequences]
    for table in wanted.tables:
        found = present.get(table.name)
        if found is None:
            steps.append(Step(table.name, "create"))
        elif found.columns != table.columns:
            rows = first(con.execute(f"SELECT count(*) FROM {table.name}").fetchall())[0]
            steps.append(Step(table.name, "rebuild", int(rows)))
    return steps


def _filling(old: Table, new: Table) -> tuple[list[str], list[str]]:
    """The columns of the new table filled from the old one, and the expression of each."""
    have = {name for name, _ in old.columns}
    names, values = [], []
    for name, sql_type in new.columns:
        if name in have:
            names.append(name)
            values.append(f"CAST(\"{name}\" AS {sql_type})")
            continue
        derived = DERIVED.get((new.name, name))
        if derived is not None and set(derived[1]) <= have:
            names.append(name)
            values.append(derived[0])
    return names, values


def _rebuild(con: Connection, table: Table, old: Table) -> None:
    scratch = table.name + UPGRADE_SUFFIX
    head = f"CREATE TABLE {table.name}"
    if not table.create_sql.startswith(head):
        raise StoreError(f"unexpected definition of {table.name}: {table.create_sql[:80]}")
    con.execute(f"DROP TABLE IF EXISTS {scratch}")
    con.execute(f"CREATE TABLE {scratch}{table.create_sql[len(head):]}")
    names, values = _filling(old, table)
    quoted = [f'"{name}"' for name in names]
    con.execute(f"INSERT INTO {scratch} ({', '.join(quoted)}) SELECT {', '.join(values)} FROM {table.name}")
    con.execute(f"DROP TABLE {table.name}")
    con.execute(f"ALTER TABLE {scratch} RENAME TO {table.name}")


def apply_schema(con: Connection, path: str) -> None:
    """Make the file this version's (a new file gets the whole schema), in one transaction stamped last; refuse
    a file written by a newer tsstats. A failed upgrade raises ``StoreError`` and leaves the file as it was."""
    version = stamped_version(con)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(f"database file {path} has schema version {version}, newer than this "
                         f"tsstats understands ({SCHEMA_VERSION}); upgrade tsstats")
    if version == SCHEMA_VERSION and not missing_column_statements(con):
        return  # stamped by the transaction that made it whole, with every metric of the catalog: nothing to do
    present = _tables(con)
    steps = plan(con, present)
    if not steps and version == SCHEMA_VERSION:
        return
    wanted = target()
    tables = {table.name: table for table in wanted.tables}
    sequences = dict(wanted.sequences)
    upgrading = version is not None and any(step.kind == "rebuild" or step.rows for step in steps)
    if upgrading:
        rows = sum(step.rows for step in steps)
        log.warning("upgrading %s from schema version %s to %s: %d tables, %d rows (one transaction; the file "
                    "is left as it was if it does not finish)", path, version, SCHEMA_VERSION, len(steps), rows)
    started = time.monotonic()
    con.execute("BEGIN")
    try:
        for step in steps:
            if step.kind == "sequence":
                con.execute(sequences[step.table])
            elif step.kind == "create":
                con.execute(tables[step.table].create_sql)
                if step.table in FILLED_FROM_EARLIER and version is not None:
                    con.execute(FILLED_FROM_EARLIER[step.table])
            else:
                if upgrading:
                    log.info("upgrading table %s (%d rows)", step.table, step.rows)
                _rebuild(con, tables[step.table], present[step.table])
        con.execute("INSERT OR REPLACE INTO schema_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        con.execute("COMMIT")
    except Exception as error:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        if version is None:
            raise
        raise StoreError(f"cannot upgrade database file {path} from schema version {version} to "
                         f"{SCHEMA_VERSION}: {error}; the file is left as it was (the tsstats that wrote it still "
                         f"opens it); docs/operations.md says what an upgrade needs") from error
    if upgrading:
        con.execute("CHECKPOINT")  # the old tables' blocks are free for the rows to come
        log.warning("upgraded %s to schema version %s in %.1f s", path, SCHEMA_VERSION, time.monotonic() - started)
