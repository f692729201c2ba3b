"""Data out of the file: exports of samples or rollups to Parquet or CSV with units in the column names, a
consistent backup, and the room the files they write need.

**Export.**

Written by DuckDB's COPY to a file the caller names (a temporary one beside the destination, renamed into
place once complete, so a failed or interrupted export leaves no partial file), a stretch of the range at a
time (``copy_chunks``, which the comparisons' export uses too): a day of raw samples in one statement ran out
of the 128 MB ``db_memory_limit``.
Columns: ``time_utc`` (a timestamp), then per metric ``<name>_<unit>`` for raw samples, or
``<name>_<agg>_<unit>`` (avg, min, max) for the 1-minute and 1-hour tiers; energy metrics are the joules of
each sample or bucket (``<name>_J``). The tiers hold closed buckets only: the newest minute (and hour) is in
the raw samples until it closes.

**Room.** Files the store writes besides its own (exports, backups): the room they need is checked first, and
what is left of one being written is removed.

**Backup.** A consistent copy of the database, made in bounded memory while the service keeps sampling and
writing.

Two passes. First, inside one read transaction of the caller's cursor (one snapshot), every table is written to
Parquet parts beside the destination, at most ``PART_VALUES`` values a part, with the sequences' positions; a
read transaction writes no database, so nothing accumulates in memory. Then a database of its own opens the
destination, creates the tables and sequences as the source declares them, and loads the parts one statement
each, checkpointing as it goes. DuckDB's ``COPY FROM DATABASE`` (one statement) ran out of the 128 MB
``db_memory_limit`` on a file with 90 days of 1-minute rollups: a row group of a 183-column table is built
in memory whole. The copy opens as any tsstats database does (tables, data, sequences).
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass, replace

from tsstats.core.inputs import InputError, single_values, time_range
from tsstats.core.units import DAY_MS, HOUR_MS, MIB, SERIES_SIGNIFICANT
from tsstats.storage.catalog import ENERGY_METRICS, HOST_METRICS, energy_expression
from tsstats.storage.history import Series, resolve_series
from tsstats.storage.rows import GPU_ROW
from tsstats.storage.sql import Connection, InsufficientStorage, connect, significant_sql, sql_text

TIERS = ("raw", "1m", "1h")
FORMATS = ("parquet", "csv")
PARAMETERS = ("metrics", "from", "to", "tier", "format")
UNIT_SUFFIX = {"%": "pct", "count": "count", "ms": "ms", "B/s": "Bps", "W": "W", "MiB": "MiB", "°C": "degC",
               "J": "J", "MHz": "MHz", "ops/s": "opsps", "events/s": "eventsps", "s": "s"}  # every catalog unit has one
EXPORT_BYTES = {"csv": (26, 14), "parquet": (8, 9)}  # a row's time and each value, at most, in each format
CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}


@dataclass(frozen=True)
class ExportQuery:
    series: tuple[Series, ...]
    from_ms: int
    to_ms: int
    tier: str
    format: str


def parse_export_query(values: dict[str, str], now_s: float, known_gpus: set[int] | None = None) -> ExportQuery:
    """Check the parameters (any unknown one is an error): defaults every host metric and its energy, the last
    24 h, raw samples, CSV."""
    single = single_values({key: [value] for key, value in values.items()}, PARAMETERS)
    names = [name.strip() for name in single.get("metrics", "").split(",") if name.strip()]
    if not names:
        names = [metric.name for metric in HOST_METRICS + ENERGY_METRICS]
    if len(set(names)) != len(names):
        raise InputError("metrics names a metric twice", field="metrics")
    series = tuple(resolve_series(name, known_gpus) for name in names)
    from_ms, to_ms = time_range(single, "-24h", now_s)
    tier = single.get("tier", "raw")
    if tier not in TIERS:
        raise InputError(f"tier must be one of {', '.join(TIERS)}", field="tier")
    output = single.get("format", "csv")
    if output not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}", field="format")
    return ExportQuery(series, from_ms, to_ms, tier, output)


def _column(series: Series, aggregate: str | None = None) -> str:
    unit = UNIT_SUFFIX[series.metric.unit]
    return f'"{series.name}_{aggregate}_{unit}"' if aggregate else f'"{series.name}_{unit}"'


def export_sql(query: ExportQuery) -> str:
    """The SELECT of an export (bounds inlined: they are checked integers)."""
    raw = query.tier == "raw"
    time_column = "ts_ms" if raw else "bucket_ms"
    host_table = "samples" if raw else f"rollup_{query.tier}"
    gpu_table = "gpu_samples" if raw else f"gpu_rollup_{query.tier}"
    where = f"{time_column} >= {int(query.from_ms)} AND {time_column} < {int(query.to_ms)}"
    columns, joins = [f"make_timestamp(h.{time_column} * 1000) AS time_utc"], []

    def n(expression: str) -> str:
        return significant_sql(expression, SERIES_SIGNIFICANT)

    for number, series in enumerate(query.series):
        if series.energy is not None:  # every value to the digits history gives it: no binary noise in a CSV
            columns.append(f"{n(energy_expression(series.energy, raw))} AS {_column(series)}")
            continue
        source = "h"
        if series.gpu is not None:
            source = f"g{number}"
            joins.append(f"LEFT JOIN (SELECT * FROM {gpu_table} WHERE gpu = {int(series.gpu)} AND {where}) "
                         f"{source} ON {source}.{time_column} = h.{time_column}")
        if raw:
            columns.append(f"{n(_qualified(series.metric.expression, source))} AS {_column(series)}")
            continue
        stem = f"{source}.{series.metric.stem}"
        columns += [f"{n(f'{stem}_sum / nullif({stem}_n, 0)')} AS {_column(series, 'avg')}",
                    f"{n(f'{stem}_min')} AS {_column(series, 'min')}",
                    f"{n(f'{stem}_max')} AS {_column(series, 'max')}"]
    return (f"SELECT {', '.join(columns)} FROM (SELECT * FROM {host_table} WHERE {where}) h {' '.join(joins)} "
            f"ORDER BY h.{time_column}")


def _qualified(expression: str, source: str) -> str:
    """A raw metric's expression over the columns of ``source`` (the joined per-GPU rows, or the host's)."""
    if source == "h":
        return expression
    for field in GPU_ROW.fields:
        expression = expression.replace(field.stored, f"{source}.{field.stored}")
    return expression


def estimated_bytes(con: Connection, query: ExportQuery) -> int:
    """About what the export's file will take (more than it will, rather than less): the rows of the tier in the
    range times its columns, at what a value takes in CSV text or uncompressed Parquet."""
    raw = query.tier == "raw"
    time_column, table = ("ts_ms", "samples") if raw else ("bucket_ms", f"rollup_{query.tier}")
    rows = con.execute(f"SELECT count(*) FROM {table} WHERE {time_column} >= ? AND {time_column} < ?",
                       [int(query.from_ms), int(query.to_ms)]).fetchall()[0][0]
    values = sum(1 if raw or series.energy is not None else 3 for series in query.series)
    time_bytes, value_bytes = EXPORT_BYTES[query.format]
    return int(rows) * (time_bytes + values * value_bytes)


CHUNK_MS = {"raw": 2 * HOUR_MS, "1m": 15 * DAY_MS, "1h": 730 * DAY_MS}  # ~72,000 raw rows, ~22,000 bucket rows
CHUNK_ROW_GROUP = 20_000  # rows of a Parquet row group when chunks are read back into one file


def write_export(con: Connection, query: ExportQuery, path: str) -> int:
    """Write the export to ``path`` (a fresh temporary file), ``CHUNK_MS`` of its range at a time so that memory
    stays within the database's limit whatever the range; returns the rows written."""
    return copy_chunks(con, [export_sql(replace(query, from_ms=start, to_ms=end))
                             for start, end in export_spans(con, query)], path, query.format)


def export_spans(con: Connection, query: ExportQuery) -> list[tuple[int, int]]:
    """The stretches of the range, ``CHUNK_MS`` each, over the rows there are (a range of a century holding a
    day of samples is a day's stretches); one stretch, the whole range, when it holds none."""
    raw = query.tier == "raw"
    column, table = ("ts_ms", "samples") if raw else ("bucket_ms", f"rollup_{query.tier}")
    low, high = con.execute(f"SELECT min({column}), max({column}) FROM {table} WHERE {column} >= ? AND {column} < ?",
                            [int(query.from_ms), int(query.to_ms)]).fetchall()[0]
    if low is None:
        return [(query.from_ms, query.to_ms)]
    step = CHUNK_MS[query.tier]
    starts = list(range(int(low), int(high) + 1, step))
    return [(query.from_ms if number == 0 else start, query.to_ms if number == len(starts) - 1 else start + step)
            for number, start in enumerate(starts)]


def copy_chunks(con: Connection, selects: list[str], path: str, file_format: str) -> int:
    """COPY the rows of ``selects``, one after the other, into the one file ``path`` (CSV with one header, or
    Parquet), each statement on its own so that none holds more than its share in memory: CSV chunks are appended
    to the file, Parquet chunks written as parts beside it (named after it, so a crash leaves them where
    start-up removes scratch files) and read back into it. Returns the rows written."""
    parquet = file_format == "parquet"
    if len(selects) == 1:
        options = "FORMAT parquet, COMPRESSION zstd" if parquet else "FORMAT csv, HEADER"
        return _copied(con, f"COPY ({selects[0]}) TO {sql_text(path)} ({options})")
    parts = [f"{path}.part{number}" for number in range(len(selects))]
    rows = 0
    try:
        for number, (select, part) in enumerate(zip(selects, parts, strict=True)):
            options = "FORMAT parquet, COMPRESSION zstd" if parquet else \
                f"FORMAT csv, HEADER {'true' if number == 0 else 'false'}"
            rows += _copied(con, f"COPY ({select}) TO {sql_text(part)} ({options})")
        if parquet:
            con.execute(f"COPY (SELECT * FROM read_parquet([{', '.join(sql_text(part) for part in parts)}])) TO "
                        f"{sql_text(path)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {CHUNK_ROW_GROUP})")
        else:
            with open(path, "wb") as out:
                for part in parts:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
    finally:
        for part in parts:
            if os.path.exists(part):
                os.unlink(part)
    return rows


def _copied(con: Connection, statement: str) -> int:
    found = con.execute(statement).fetchall()
    return int(found[0][0]) if found else 0


SPACE_KEPT_BYTES = 16 * MIB  # left free for the database's own writes (WAL, checkpoints) when a file is made


def free_bytes(directory: str) -> int:
    """What an unprivileged writer may still write on the file system holding ``directory``."""
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def check_room(directory: str, needed_bytes: int, what: str) -> None:
    """Refuse (``InsufficientStorage``) a file of about ``needed_bytes`` that would leave less than
    ``SPACE_KEPT_BYTES`` free beside the database."""
    free = free_bytes(directory)
    if needed_bytes + SPACE_KEPT_BYTES > free:
        raise InsufficientStorage(
            f"{what} would take about {needed_bytes / MIB:.1f} MiB and {free / MIB:.1f} MiB are free in {directory}, "
            f"of which {SPACE_KEPT_BYTES / MIB:.0f} MiB stay for the database; free some space or ask for less "
            f"(a shorter range, fewer metrics, a coarser tier, parquet)", needed_bytes, free)


def scratch_prefix(database_path: str) -> str:
    """The name every scratch file of the service holding ``database_path`` starts with: the database's own
    name in it, so that only the service holding that file (it is locked) ever removes them."""
    return f".tsstats-out-{os.path.basename(database_path)}-"


def remove_leftovers(database_path: str) -> list[str]:
    """Remove the scratch files (exports, backups) a crash left beside the database; the paths removed."""
    pattern = os.path.join(os.path.dirname(os.path.abspath(database_path)),
                           glob.escape(scratch_prefix(database_path)) + "*")
    removed = []
    for path in glob.glob(pattern):
        try:
            os.unlink(path)
            removed.append(path)
        except OSError:
            pass
    return removed


def remove_partial(path: str) -> None:
    """Remove a file being written, the WAL beside it if it was a database, and its parts (``<path>.part<N>.*``,
    written by chunked exports and backups); what is gone already is no error."""
    for leftover in (path, path + ".wal", *glob.glob(glob.escape(path) + ".part*")):
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass


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
