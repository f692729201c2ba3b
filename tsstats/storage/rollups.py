"""Rollup tiers, on the writing connection (writer thread).

A bucket is written once, when it has closed: 1-minute rows from the samples of that minute, 1-hour rows
from the 1-minute rows of that hour. The sampler calls ``close_buckets`` in each flush's transaction, so
only the minutes (and hours) that just ended are read; after a restart or a crash the same call closes
every bucket still missing, from the finer tier, so the tiers always agree with the samples they came from.

Minute buckets: SQL computes each metric's value per sample, numpy groups them. Written as one ``INSERT ...
SELECT`` with five aggregates for each of the ~35 metrics, DuckDB spent 30 ms a minute planning it and 10 more
running it, the sampler's largest single cost at 1 Hz; the values alone (one expression per metric, no
aggregates) are a 10 ms query, and their min, max, sum, count and last per minute are a few ``reduceat`` calls
(2 ms). Writing the row's 178 columns costs 12 ms either way. The hour tier still merges minute rows in SQL
(once an hour, a few rows). A few rows go in as one ``INSERT ... VALUES`` (16 ms for the minute's one row);
more, as when a day of samples is rolled up at once, as one list per column unnested by DuckDB (0.12 ms a row
against 2 to 4 ms: a day's 1,440 rows in 0.2 s, not 3 s; ten days' in 1.8 s, not 57).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from tsstats.core.units import DAY_MS, HOUR_MS, MINUTE_MS
from tsstats.storage.catalog import ENERGY_SUMS, GPU_METRICS, HOST_METRICS, Metric, rollup_aggregates, rollup_columns
from tsstats.storage.sql import Connection, first, float_columns

log = logging.getLogger("tsstats.store")
CATCH_UP_MS = HOUR_MS  # the most samples one transaction of a catch-up rolls up (36,000 rows at 10 Hz)


def tier_columns(gpu: bool) -> list[tuple[str, str]]:
    """(column, type) of a rollup table, host (``rollup_1m``, ``rollup_1h``) or per-GPU, as schema.sql declares
    them: the bucket, its sample count, the energy sums (host tables), and five aggregates per metric."""
    metrics = GPU_METRICS if gpu else HOST_METRICS
    head = [("bucket_ms", "BIGINT"), *([("gpu", "UTINYINT")] if gpu else []), ("samples", "INTEGER")]
    energy = [] if gpu else [(column, "DOUBLE") for column, _ in ENERGY_SUMS]
    return head + energy + [(name, "INTEGER" if name.endswith("_n") else "DOUBLE") for name in rollup_columns(metrics)]


ROLLUP_TABLES = (("rollup_1m", False), ("rollup_1h", False), ("gpu_rollup_1m", True), ("gpu_rollup_1h", True))


def missing_column_statements(con: Connection) -> list[str]:
    """ALTER statements adding the rollup columns of metrics the catalog has and the tables do not yet: the
    catalog is the one list of metrics, schema.sql creates the tables with the first ones. The schema's target is
    built with them; a file of this version that lacks any is upgraded (storage.schema)."""
    present: dict[str, set[str]] = {}
    for table, column in con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                     "WHERE table_name IN ('rollup_1m', 'rollup_1h', 'gpu_rollup_1m', "
                                     "'gpu_rollup_1h')").fetchall():
        present.setdefault(table, set()).add(column)
    return [f"ALTER TABLE {table} ADD COLUMN {name} {sql_type}" for table, gpu in ROLLUP_TABLES
            for name, sql_type in tier_columns(gpu) if name not in present.get(table, set())]


def _merge_buckets(step_ms: int, table: str, source: str, metrics, energy: bool, gpu: bool) -> str:
    """INSERT of the closed buckets of [?, ?) into ``table``, merging the finer tier's rows."""
    key = ["gpu"] if gpu else []
    energy_values = [f"sum({column})" for column, _ in ENERGY_SUMS] if energy else []
    columns = [name for name, _ in tier_columns(gpu)]
    values = [f"(bucket_ms // {step_ms}) * {step_ms}", *key, "sum(samples)", *energy_values,
              *rollup_aggregates(metrics, False)]
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source} "
            f"WHERE bucket_ms >= ? AND bucket_ms < ? GROUP BY {''.join(k + ', ' for k in key)}"
            f"(bucket_ms // {step_ms}) ORDER BY 1")


@dataclass(frozen=True)
class MinuteTier:
    """One minute tier: its table, made of the raw values of ``source`` (host rows with the energy sums, or
    per-GPU rows)."""

    table: str
    source: str
    gpu: bool

    @cached_property
    def select(self) -> str:
        return values_select(self.source, GPU_METRICS if self.gpu else HOST_METRICS, not self.gpu, self.gpu)

    @cached_property
    def columns(self) -> list[str]:
        return [name for name, _ in tier_columns(self.gpu)]

    def close(self, con: Connection, start_ms: int, end_ms: int) -> int:
        return insert_minutes(con, self.table, self.select, self.gpu, not self.gpu, self.columns, start_ms, end_ms,
                              MINUTE_MS)


MINUTE_TIERS = (MinuteTier("rollup_1m", "samples", False), MinuteTier("gpu_rollup_1m", "gpu_samples", True))
HOUR_SQL = (_merge_buckets(HOUR_MS, "rollup_1h", "rollup_1m", HOST_METRICS, True, False),
            _merge_buckets(HOUR_MS, "gpu_rollup_1h", "gpu_rollup_1m", GPU_METRICS, False, True))


@dataclass(frozen=True)
class TierState:
    """How far each tier is complete: every bucket before these times is written."""

    minutes_until: int | None = None
    hours_until: int | None = None


class Rollups:
    """Knows how far each tier is complete and closes the buckets that ended since. ``close_buckets`` writes
    inside the caller's transaction and returns the new state; ``commit`` takes it once that transaction
    has committed, so a failed write leaves the state as it was."""

    def __init__(self) -> None:
        self.state = TierState()
        self.cpu_s = 0.0  # thread CPU seconds spent closing buckets

    @property
    def minutes_until(self) -> int | None:
        return self.state.minutes_until

    @property
    def hours_until(self) -> int | None:
        return self.state.hours_until

    def load(self, con: Connection) -> None:
        minute = first(con.execute("SELECT max(bucket_ms) FROM rollup_1m").fetchall())[0]
        hour = first(con.execute("SELECT max(bucket_ms) FROM rollup_1h").fetchall())[0]
        oldest_sample = first(con.execute("SELECT min(ts_ms) FROM samples").fetchall())[0]
        minutes_until = hours_until = None
        if minute is not None:
            minutes_until = int(minute) + MINUTE_MS
        elif oldest_sample is not None:
            minutes_until = int(oldest_sample) // MINUTE_MS * MINUTE_MS
        if hour is not None:
            hours_until = int(hour) + HOUR_MS
        elif minutes_until is not None:
            first_minute = first(con.execute("SELECT min(bucket_ms) FROM rollup_1m").fetchall())[0]
            start = int(first_minute) if first_minute is not None else minutes_until
            hours_until = start // HOUR_MS * HOUR_MS
        self.state = TierState(minutes_until, hours_until)

    def due(self, latest_ts_ms: float) -> bool:
        """Whether a sample at ``latest_ts_ms`` closes a bucket."""
        until = self.state.minutes_until
        return until is None or int(latest_ts_ms) // MINUTE_MS * MINUTE_MS > until

    def close_buckets(self, con: Connection, latest_ts_ms: float, earliest_ts_ms: float | None = None) -> TierState:
        """Write every bucket that ended before the minute of ``latest_ts_ms`` (inside the caller's
        transaction) and return the state to ``commit`` after it. ``earliest_ts_ms`` is the oldest sample just
        written, which starts the tiers of an empty database. The thread CPU time it takes adds to ``cpu_s``
        (tsstats' own footprint)."""
        started = time.thread_time()
        try:
            return self._close_buckets(con, latest_ts_ms, earliest_ts_ms)
        finally:
            self.cpu_s += time.thread_time() - started

    def _close_buckets(self, con: Connection, latest_ts_ms: float, earliest_ts_ms: float | None) -> TierState:
        minute_start = int(latest_ts_ms) // MINUTE_MS * MINUTE_MS
        minutes_until, hours_until = self.state.minutes_until, self.state.hours_until
        if minutes_until is None:
            origin = int(earliest_ts_ms if earliest_ts_ms is not None else latest_ts_ms)
            minutes_until = origin // MINUTE_MS * MINUTE_MS
            hours_until = origin // HOUR_MS * HOUR_MS
        if minute_start > minutes_until:
            for tier in MINUTE_TIERS:
                tier.close(con, minutes_until, minute_start)
            minutes_until = minute_start
        assert hours_until is not None  # the tiers start together
        hour_start = minutes_until // HOUR_MS * HOUR_MS
        if hour_start > hours_until:
            for statement in HOUR_SQL:
                con.execute(statement, [hours_until, hour_start])
            hours_until = hour_start
        return TierState(minutes_until, hours_until)

    def commit(self, state: TierState) -> None:
        self.state = state

    def close(self, store, latest_ts_ms: float) -> None:
        """Close the buckets due at ``latest_ts_ms`` in transactions of their own, each over at most
        ``CATCH_UP_MS`` of samples: a file with weeks of samples and no rollups (schema version 1) is caught up
        in bounded memory."""
        latest = int(latest_ts_ms)
        if self.minutes_until is not None and latest - self.minutes_until > CATCH_UP_MS:
            log.warning("writing the rollups of %.1f days of samples", (latest - self.minutes_until) / DAY_MS)
        step = None
        while step != latest:
            until = self.minutes_until
            step = latest if until is None else min(latest, until + CATCH_UP_MS)
            self.commit(store.transaction(lambda con, step=step: self.close_buckets(con, step)))


VALUES_ROWS = 16  # up to this many rows in one INSERT ... VALUES; more as unnested lists

def values_select(source: str, metrics: tuple[Metric, ...], energy: bool, gpu: bool) -> str:
    """Each sample's bucket key and metric values in [?, ?), in key order (then time)."""
    key = ["gpu"] if gpu else []
    columns = ["ts_ms", *key, *(f"{expression} AS {column}" for column, expression in ENERGY_SUMS if energy),
               *(f"({metric.expression}) AS m_{metric.stem}" for metric in metrics)]
    return (f"SELECT {', '.join(columns)} FROM {source} WHERE ts_ms >= ? AND ts_ms < ? "
            f"ORDER BY {''.join(k + ', ' for k in key)}ts_ms")


def group_starts(keys: list[np.ndarray]) -> np.ndarray:
    """Indexes where a run of equal keys starts (rows sorted by the keys)."""
    changed = np.zeros(len(keys[0]), dtype=bool)
    changed[0] = True
    for key in keys:
        changed[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(changed)


def _or_none(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(value) else float(value) for value in values.tolist()]


def counts_and_sums(values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group, how many values it has and their sum (NaN, SQL's NULL, over a group without any)."""
    known = ~np.isnan(values)
    counts = np.add.reduceat(known.astype(np.int64), starts)
    sums = np.add.reduceat(np.where(known, values, 0.0), starts)
    sums[counts == 0] = np.nan
    return counts, sums


def metric_parts(values: np.ndarray, starts: np.ndarray) -> list[list[Any]]:
    """min, max, sum, n and last of one metric per group, NULL (None) over a group without a value, as the
    SQL aggregates give them (``last``: the latest sample that has one)."""
    known = ~np.isnan(values)
    counts, sums = counts_and_sums(values, starts)
    empty = counts == 0
    lows, highs = np.fmin.reduceat(values, starts), np.fmax.reduceat(values, starts)
    last_index = np.maximum.reduceat(np.where(known, np.arange(len(values)), -1), starts)
    lasts = np.where(empty, np.nan, values[np.maximum(last_index, 0)])
    return [_or_none(lows), _or_none(highs), _or_none(sums), counts.tolist(), _or_none(lasts)]


def bucket_columns(columns: list[np.ndarray], step_ms: int, gpu: bool, energy_sums: int) -> list[list[Any]]:
    """The columns of a rollup table's new rows (``tier_columns`` order) from the values of ``values_select``: the
    bucket, the GPU, the sample count, the energy sums, then the five parts of each metric."""
    times = columns[0]
    buckets = (times // step_ms) * step_ms
    keys = [columns[1], buckets] if gpu else [buckets]
    starts = group_starts(keys)
    head: list[list[Any]] = [buckets[starts].astype(np.int64).tolist()]
    if gpu:
        head.append(columns[1][starts].astype(np.int64).tolist())
    head.append(np.diff(np.append(starts, len(times))).tolist())
    first_value = 2 if gpu else 1
    for column in columns[first_value:first_value + energy_sums]:
        head.append(_or_none(counts_and_sums(column, starts)[1]))
    for column in columns[first_value + energy_sums:]:
        head.extend(metric_parts(column, starts))
    return head


def insert_minutes(con: Connection, table: str, select: str, gpu: bool, energy: bool, names: list[str],
                   start_ms: int, end_ms: int, step_ms: int) -> int:
    """Write the buckets of [start_ms, end_ms) into ``table`` (inside the caller's transaction); returns how
    many."""
    fetched = con.execute(select, [start_ms, end_ms]).fetchnumpy()
    columns = float_columns(fetched)
    if not len(columns[0]):
        return 0
    built = bucket_columns(columns, step_ms, gpu, len(ENERGY_SUMS) if energy else 0)
    count = len(built[0])
    if count <= VALUES_ROWS:
        placeholders = "(" + ", ".join("?" * len(names)) + ")"  # one statement; an appender costs twice as much
        con.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join([placeholders] * count)}",
                    [value for row in zip(*built, strict=True) for value in row])
    else:
        con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(['unnest(?)'] * len(names))}",
                    built)
    return count
