"""Database files of every earlier schema version, filled with rows, for the upgrade tests and the bulk benchmark.

``fixtures/schemas/vN.sql`` is the schema.sql that each earlier release applied, as it stood at these commits:
v1 7938287, v2 2b37e3c, v3 4a27a1b, v4 d36ecea, v5 the last commit before version 6, v6
the last commit before version 7. ``build`` applies one, stamps
its version as that release did, and fills every table it has with rows made by SQL (samples at 10 Hz over
``days``, one GPU's rows, rollups, comparisons with phases, offsets, grid rows, outages), so a file of a week of
samples takes a few seconds. ``fingerprint`` sums each table's rows column by column, to compare a file before
and after an upgrade.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from tsstats.storage.rollups import ROLLUP_TABLES, tier_columns

SCHEMAS = Path(__file__).parent / "fixtures" / "schemas"
VERSIONS = (1, 2, 3, 4, 5, 6)
START_MS = 1_759_996_800_000  # 2025-10-09 08:00 UTC, on the hour
TICK_MS = 100


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [(row[0], row[1]) for row in con.execute(f"DESCRIBE {table}").fetchall()]


def _value(table: str, column: str, sql_type: str) -> str:
    """A value for row ``i`` of a table (``t`` its time in epoch ms)."""
    special = {
        "ts_ms": "t", "interval_ms": str(TICK_MS), "logical_cpus": "2", "methods": "0", "gpu": "0",
        "bucket_ms": "t", "start_ms": "t", "end_ms": "t + 60000", "created_ms": "t", "started_ms": "t",
        "finished_ms": "t + 1000 + i % 5000", "at_ms": "t", "status": "'completed'",
        "models": "['model-' || (i % 50), 'model-' || ((i + 7) % 50)]", "name": "'run ' || i",
        "metadata": "'{\"i\": ' || i || '}'", "source": "'feed'", "g_per_kwh": "100 + i % 400",
        "renewable_pct": "i % 100", "kg": "0.001 * (1 + i % 10)", "note": "'offset ' || i",
        "comparison_id": "1 + i // 4", "parent_id": "NULL", "pids": "NULL", "attribution": "'time_share'",
        "gpu_share": "NULL", "accounting": "NULL", "conditions": "NULL", "fair": "i % 3 = 0",
        "error": "NULL", "samples": "600", "id": "1 + i",
    }
    if column in special:
        return special[column]
    if sql_type.startswith("VARCHAR"):
        return f"'{column} ' || i"
    if sql_type == "BOOLEAN":
        return "i % 2 = 0"
    if sql_type in ("DOUBLE", "FLOAT"):
        return "(hash(i) % 100000) / 100.0"
    if sql_type == "UTINYINT":
        return "(hash(i) % 200)::UTINYINT"
    return f"(hash(i, '{column}') % 1000)::{sql_type}"


def fill(con: duckdb.DuckDBPyConnection, table: str, rows: int, step_ms: int, start_ms: int) -> None:
    columns = _columns(con, table)
    values = ", ".join(f"{_value(table, name, sql_type)} AS \"{name}\"" for name, sql_type in columns)
    con.execute(f"INSERT INTO {table} SELECT {values} FROM (SELECT i, {start_ms} + i * {step_ms} AS t "
                f"FROM range({rows}) r(i))")


def build(path: str | Path, version: int, days: float = 0.02, comparisons: int = 200,
          start_ms: int = START_MS) -> None:
    """A file of schema ``version`` with ``days`` of 10 Hz samples (one GPU) from ``start_ms``, their rollups where
    the version has them, ``comparisons`` comparisons (four phases each where the version has phases), offsets,
    grid rows and outages."""
    samples = int(days * 86_400_000 / TICK_MS)
    con = duckdb.connect(str(path))
    try:
        con.execute((SCHEMAS / f"v{version}.sql").read_text(encoding="utf-8"))
        con.execute("INSERT OR REPLACE INTO schema_meta VALUES ('schema_version', ?)", [str(version)])
        if version == 5:  # version 5 added the catalog's later metrics to the rollup tables as it opened a file
            for table, gpu in ROLLUP_TABLES:
                present = {name for name, _ in _columns(con, table)}
                for name, sql_type in tier_columns(gpu):
                    if name not in present:
                        con.execute(f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}")
        tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        sizes = {"samples": (samples, TICK_MS), "gpu_samples": (samples, TICK_MS),
                 "rollup_1m": (samples // 600, 60_000), "gpu_rollup_1m": (samples // 600, 60_000),
                 "rollup_1h": (samples // 36_000, 3_600_000), "gpu_rollup_1h": (samples // 36_000, 3_600_000),
                 "comparisons": (comparisons, 1000), "phases": (4 * comparisons, 250), "offsets": (50, 60_000),
                 "grid_intensity": (48, 3_600_000), "outages": (5, 3_600_000)}
        for table, (rows, step) in sizes.items():
            if table in tables and rows:
                fill(con, table, rows, step, start_ms)
        for sequence, table in (("comparison_ids", "comparisons"), ("phase_ids", "phases"),
                                ("offset_ids", "offsets")):
            if table in tables:  # the ids were given explicitly: move the sequence past them, as use would have
                count = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
                if count:
                    con.execute(f"SELECT max(nextval('{sequence}')) FROM range({count})")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def fingerprint(path: str | Path, tables: tuple[str, ...] | None = None,
                skip: frozenset[tuple[str, str]] = frozenset()) -> dict[str, tuple]:
    """Per table: its row count and, per column (but those in ``skip``), a sum of the values' hashes; opened
    read-only."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = tables or tuple(row[0] for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name != 'schema_meta' ORDER BY 1").fetchall())
        found = {}
        for table in names:
            columns = [name for name, _ in _columns(con, table) if (table, name) not in skip]
            sums = ", ".join(f"sum(hash(\"{name}\")::HUGEINT)" for name in columns)
            row = con.execute(f"SELECT count(*), {sums} FROM {table}").fetchall()[0]
            found[table] = (row[0], dict(zip(columns, row[1:], strict=True)))
        return found
    finally:
        con.close()


def opened(path: str | Path, version: int, days: float, comparisons: int):
    """A store over a new file of ``version`` (upgraded as it opens); the caller closes it."""
    from tsstats.storage.store import Store

    build(path, version, days=days, comparisons=comparisons)
    return Store(str(path))


def exported_rows(path: str | Path, file_format: str) -> list[str]:
    """The rows of an exported CSV or Parquet file, as text (NaN equals NaN there)."""
    reader = "read_parquet" if file_format == "parquet" else "read_csv"
    return [repr(row) for row in duckdb.connect().execute(f"SELECT * FROM {reader}('{path}')").fetchall()]


def stamped(path: str | Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return int(con.execute("SELECT value FROM schema_meta WHERE key = 'schema_version'").fetchall()[0][0])
    finally:
        con.close()
