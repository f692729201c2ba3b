"""Minute buckets from raw samples (writer thread): SQL computes each metric's value per sample, numpy groups them.

The minute's rollup closes once a minute. Written as one ``INSERT ... SELECT`` with five aggregates for each of
the ~35 metrics, DuckDB spent 30 ms a minute planning it and 10 more running it, the sampler's largest single
cost at 1 Hz; the values alone (one expression per metric, no aggregates) are a 10 ms query, and their
min, max, sum, count and last per minute are a few ``reduceat`` calls (2 ms). Writing the row's 178 columns
costs 12 ms either way. The hour tier still merges minute rows
in SQL (once an hour, a few rows).

A few rows go in as one ``INSERT ... VALUES`` (16 ms for the minute's one row); more, as when a day of samples is
rolled up at once, as one list per column unnested by DuckDB (0.12 ms a row against 2 to 4 ms: a day's 1,440
rows in 0.2 s, not 3 s; ten days' in 1.8 s, not 57).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tsstats.storage.catalog import ENERGY_SUMS, Metric
from tsstats.storage.sql import Connection, float_columns

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


def bucket_rows(columns: list[np.ndarray], step_ms: int, gpu: bool, energy_sums: int) -> list[tuple[Any, ...]]:
    """Rows of a rollup table (``tier_columns`` order) from the values of ``values_select``: the bucket, the GPU,
    the sample count, the energy sums, then the five parts of each metric."""
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
    return list(zip(*head, strict=True))


def insert_minutes(con: Connection, table: str, select: str, gpu: bool, energy: bool, names: list[str],
                   start_ms: int, end_ms: int, step_ms: int) -> int:
    """Write the buckets of [start_ms, end_ms) into ``table`` (inside the caller's transaction); returns how
    many."""
    fetched = con.execute(select, [start_ms, end_ms]).fetchnumpy()
    columns = float_columns(fetched)
    if not len(columns[0]):
        return 0
    rows = bucket_rows(columns, step_ms, gpu, len(ENERGY_SUMS) if energy else 0)
    if len(rows) <= VALUES_ROWS:
        placeholders = "(" + ", ".join("?" * len(names)) + ")"  # one statement; an appender costs twice as much
        con.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES {', '.join([placeholders] * len(rows))}",
                    [value for row in rows for value in row])
    else:
        con.execute(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(['unnest(?)'] * len(names))}",
                    [list(column) for column in zip(*rows, strict=True)])
    return len(rows)
