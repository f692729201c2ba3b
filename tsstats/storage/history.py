"""Range queries for charts over the tiers: parameters, tier choice, bucket alignment, merge, CSV.

A query picks the coarsest tier whose buckets divide the step (1 h, 1 min, else raw samples) and answers
each aligned bucket from that tier where it is complete, from the next finer tier after that, and from raw
samples for the newest minute; the partial aggregates (sum, count, min, max, last) are merged per bucket.

History reaches the last tick: the sample rows still in the sampler's ring (not flushed yet, ``PendingRows``)
are read beside the stored ones, in the same buckets and aggregates, registered on the reading cursor for the
one query; a row that a flush stored meanwhile is read once, from the table (the ring's rows count only after
the newest stored time). Runs on a read pool's thread.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from tsstats.core.inputs import InputError, parse_duration, single_values, time_range, whole_number_text
from tsstats.core.units import DAY_MS, HOUR_MS, MINUTE_MS, MS_PER_S, SERIES_SIGNIFICANT
from tsstats.figures.formulas import round_significant
from tsstats.storage.catalog import (
    AGGREGATES,
    ENERGY_BY_NAME,
    ENERGY_COMPONENTS,
    HOST_BY_NAME,
    Metric,
    aggregate_parts,
    energy_expression,
    gpu_metric,
)
from tsstats.storage.energy import retained_energy
from tsstats.storage.sql import Connection, float_columns

MAX_POINTS = 11_000
DEFAULT_POINTS = 300
SERIES_PER_STATEMENT = 2  # series read by one statement: more at once raises its peak memory about in proportion
NICE_STEPS_MS = (100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
                 900_000, 1_800_000, 3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
                 172_800_000, 604_800_000, 2_592_000_000)
PARAMETERS = ("metrics", "from", "to", "points", "step", "agg", "format")


@dataclass(frozen=True)
class Series:
    """One requested metric: where its values live and how to read them."""

    name: str
    metric: Metric
    gpu: int | None = None  # per-GPU metric
    energy: str | None = None  # energy counter: its rollup column (cpu_j, gpu_j, mem_j or total_j)


@dataclass(frozen=True)
class HistoryQuery:
    series: tuple[Series, ...]
    aggregates: tuple[str, ...]
    from_ms: int
    to_ms: int
    step_ms: int
    start_ms: int  # the first bucket, aligned to a multiple of the step
    buckets: int
    tier: str
    format: str


def nice_step(span_ms: float, points: int) -> int:
    wanted = max(span_ms / points, 1.0)
    for step in NICE_STEPS_MS:
        if step >= wanted:
            return step
    days = math.ceil(wanted / DAY_MS)
    return days * DAY_MS


def tier_for(step_ms: int) -> str:
    if step_ms % HOUR_MS == 0:
        return "1h"
    if step_ms % MINUTE_MS == 0:
        return "1m"
    return "raw"


def resolve_series(name: str, known_gpus: set[int] | None = None) -> Series:
    if name in HOST_BY_NAME:
        return Series(name, HOST_BY_NAME[name])
    if name in ENERGY_BY_NAME:
        metric = ENERGY_BY_NAME[name]
        return Series(name, metric, energy=metric.stem)
    found = gpu_metric(name)
    if found is not None and (known_gpus is None or found[0] in known_gpus):
        return Series(name, found[1], gpu=found[0])
    raise InputError(f"unknown metric {name!r}; GET /api/metrics lists them", field="metrics")


def parse_history_query(args: dict[str, list[str]], now_s: float, known_gpus: set[int] | None = None
                        ) -> HistoryQuery:
    """Check every parameter; ``known_gpus`` (when given) are the GPU indexes that per-GPU names may use."""
    single = single_values(args, PARAMETERS)
    names = [name.strip() for name in single.get("metrics", "").split(",") if name.strip()]
    if not names:
        raise InputError("metrics is required: comma-separated names from GET /api/metrics", field="metrics")
    if len(set(names)) != len(names):
        raise InputError("metrics names a metric twice", field="metrics")
    series = tuple(resolve_series(name, known_gpus) for name in names)
    aggregates = tuple(a.strip() for a in single.get("agg", "avg").split(",") if a.strip())
    if not aggregates or len(set(aggregates)) != len(aggregates):
        raise InputError("agg must list aggregates once each: avg, min, max, last", field="agg")
    for aggregate in aggregates:
        if aggregate not in AGGREGATES:
            raise InputError(f"unknown aggregate {aggregate!r}; allowed: {', '.join(AGGREGATES)}", field="agg")
    from_ms, to_ms = time_range(single, "-1h", now_s)
    output = single.get("format", "json")
    if output not in ("json", "csv"):
        raise InputError("format must be json or csv", field="format")
    if "points" in single and "step" in single:
        raise InputError("give points or step, not both", field="step")
    if "step" in single:
        try:
            step_s = parse_duration(single["step"])
        except ValueError as error:
            raise InputError(f"step: {error}", field="step") from None
        step_ms = int(round(step_s * MS_PER_S))
        if step_ms <= 0:
            raise InputError("step must be at least 1ms", field="step")
        limit_field = "step"
    else:
        points = whole_number_text(single.get("points", str(DEFAULT_POINTS)))
        if points is None or not 1 <= points <= MAX_POINTS:
            raise InputError(f"points must be an integer from 1 to {MAX_POINTS}", field="points")
        step_ms = nice_step(max(to_ms - from_ms, 1), points)
        limit_field = "points"
    start_ms = from_ms // step_ms * step_ms
    buckets = -(-(to_ms - start_ms) // step_ms) if to_ms > start_ms else 0
    if buckets > MAX_POINTS:
        raise InputError(f"the range holds {buckets} buckets of {step_ms} ms, more than {MAX_POINTS}",
                         field=limit_field)
    return HistoryQuery(series, aggregates, from_ms, to_ms, step_ms, start_ms, buckets, tier_for(step_ms), output)


# -- reading the tiers ---------------------------------------------------------------------------------
@dataclass
class Partial:
    """Per-bucket partial aggregates of one series: arrays of length ``buckets``."""

    total: np.ndarray
    count: np.ndarray
    low: np.ndarray
    high: np.ndarray
    last: np.ndarray
    last_ts: np.ndarray

    @classmethod
    def empty(cls, buckets: int) -> Partial:
        return cls(np.zeros(buckets), np.zeros(buckets), np.full(buckets, np.inf), np.full(buckets, -np.inf),
                   np.full(buckets, np.nan), np.full(buckets, -np.inf))

    def merge(self, index: np.ndarray, total, count, low, high, last, last_ts) -> None:
        np.add.at(self.total, index, np.nan_to_num(total))
        np.add.at(self.count, index, np.nan_to_num(count))
        np.minimum.at(self.low, index, np.where(np.isnan(low), np.inf, low))
        np.maximum.at(self.high, index, np.where(np.isnan(high), -np.inf, high))
        newer = np.nan_to_num(last_ts, nan=-np.inf) > self.last_ts[index]
        self.last[index[newer]] = last[newer]
        self.last_ts[index[newer]] = last_ts[newer]


def _value_parts(series: Series, from_raw: bool) -> list[str]:
    """SELECT items giving sum, count, min, max, last and the last's time for one series."""
    parts = aggregate_parts(series.metric, from_raw)
    return [parts[name] for name in ("sum", "n", "min", "max", "last", "last_time")]


def _piece_select(query: HistoryQuery, table: str, from_raw: bool, gauges: list[Series], counters: list[Series],
                  gpu: int | None) -> str:
    """One table's rows in [?, ?) aggregated into the query's buckets, as named partial columns."""
    time_column = "ts_ms" if from_raw else "bucket_ms"
    step = query.step_ms
    items = [f"({time_column} // {step}) * {step} AS b"]
    for i, series in enumerate(gauges):
        names = (f"s{i}", f"n{i}", f"lo{i}", f"hi{i}", f"last{i}", f"lt{i}")
        items += [f"{part} AS {name}" for part, name in zip(_value_parts(series, from_raw), names, strict=True)]
    for j, series in enumerate(counters):
        assert series.energy is not None  # a counter names its rollup column
        items.append(f"sum({energy_expression(series.energy, from_raw)}) AS e{j}")
    items.append("count(*) AS rows")
    where = f"{time_column} >= ? AND {time_column} < ?" + (f" AND gpu = {int(gpu)}" if gpu is not None else "")
    return f"SELECT {', '.join(items)} FROM {table} WHERE {where} GROUP BY b"


def _read_group(con: Connection, query: HistoryQuery, pieces: list[tuple[str, bool, int, int]], group: list[Series],
                partials: dict[str, Partial], energy: dict[str, np.ndarray],
                energy_rows: dict[str, np.ndarray]) -> None:
    """Read every piece (table, raw or not, [low, high)) of one group of series in a single statement: the
    pieces' partial aggregates are merged per bucket by the outer query."""
    pieces = [piece for piece in pieces if piece[2] < piece[3]]
    if not pieces or not group:
        return
    gauges = [s for s in group if s.energy is None]
    counters = [s for s in group if s.energy is not None]
    gpu = group[0].gpu
    union = " UNION ALL ".join(_piece_select(query, table, from_raw, gauges, counters, gpu)
                               for table, from_raw, _, _ in pieces)
    outer = ["b"]
    for i in range(len(gauges)):
        outer += [f"sum(s{i})", f"sum(n{i})", f"min(lo{i})", f"max(hi{i})",
                  f"arg_max(last{i}, lt{i}) FILTER (WHERE last{i} IS NOT NULL)", f"max(lt{i})"]
    outer += [f"sum(e{j})" for j in range(len(counters))]
    outer.append("sum(rows)")
    params = [bound for _, _, low, high in pieces for bound in (low, high)]
    rows = con.execute(f"SELECT {', '.join(outer)} FROM ({union}) GROUP BY b ORDER BY b", params).fetchnumpy()
    if not len(rows["b"]):
        return
    columns = float_columns(rows)
    index = ((columns[0] - query.start_ms) // query.step_ms).astype(np.int64)
    position = 1
    for series in gauges:
        partials[series.name].merge(index, *columns[position:position + 6])
        position += 6
    for series in counters:
        np.add.at(energy[series.name], index, np.nan_to_num(columns[position]))
        np.add.at(energy_rows[series.name], index, columns[-1])
        position += 1


def tier_plan(tier: str, begin: int, end: int, minutes_until: int, hours_until: int) -> list[tuple[str, int, int]]:
    """Which table answers which part of [begin, end): the query's tier where it is complete, then each finer
    tier up to where it is complete, then raw samples."""
    if tier == "raw":
        return [("raw", begin, end)]
    plan = []
    low = begin
    if tier == "1h":
        high = max(min(end, hours_until), low)
        plan.append(("1h", low, high))
        low = high
    high = max(min(end, minutes_until), low)
    plan.append(("1m", low, high))
    plan.append(("raw", high, end))
    return plan


def run_history(con: Connection, query: HistoryQuery, minutes_until: int | None, hours_until: int | None,
                pending: PendingRows | None = None) -> dict:
    """The answer of ``GET /api/history`` as a dict (arrays as lists, None for empty buckets); ``pending``: the
    rows not stored yet, read beside the stored ones (``PendingRows``)."""
    buckets = query.buckets
    end = query.start_ms + buckets * query.step_ms
    begin = query.start_ms
    minutes = minutes_until if minutes_until is not None else begin
    hours = hours_until if hours_until is not None else begin
    partials = {s.name: Partial.empty(buckets) for s in query.series if s.energy is None}
    energy = {s.name: np.zeros(buckets) for s in query.series if s.energy is not None}
    rows = {name: np.zeros(buckets) for name in energy}
    host = [s for s in query.series if s.gpu is None]
    gpus = sorted({s.gpu for s in query.series if s.gpu is not None})
    groups = [(host, "samples", "rollup_1m", "rollup_1h")]
    groups += [([s for s in query.series if s.gpu == g], "gpu_samples", "gpu_rollup_1m", "gpu_rollup_1h")
               for g in gpus]
    with registered(con, pending) as rings:
        for group, raw_table, minute_table, hour_table in groups:
            tables = {"1h": hour_table, "1m": minute_table, "raw": raw_table}
            pieces = [(tables[level], level == "raw", low, high)
                      for level, low, high in tier_plan(query.tier, begin, end, minutes, hours)]
            pieces += [(rings[raw_table], True, low, high) for table, _, low, high in pieces
                       if table == raw_table and raw_table in rings]
            for first_series in range(0, len(group), SERIES_PER_STATEMENT):
                _read_group(con, query, pieces, group[first_series:first_series + SERIES_PER_STATEMENT], partials,
                            energy, rows)
    series_out: dict[str, dict[str, list]] = {}
    for series in query.series:
        if series.energy is None:
            series_out[series.name] = finish_gauge(partials[series.name], query.aggregates)
        else:
            retained = retained_energy(con, hours, minutes, before_ms=begin)
            parts = ENERGY_COMPONENTS if series.energy == "total_j" else (series.energy,)
            base = sum(getattr(retained, part) for part in parts)
            series_out[series.name] = finish_counter(energy[series.name], rows[series.name] > 0, base,
                                                     query.aggregates)
    return {"from": query.from_ms, "to": query.to_ms, "step": query.step_ms, "tier": query.tier,
            "timestamps": [query.start_ms + i * query.step_ms for i in range(buckets)], "series": series_out}


def _nullable(values: np.ndarray, present: np.ndarray) -> list:
    """Numbers to ``SERIES_SIGNIFICANT`` digits (no float noise), None where a bucket has no data (vectorized: a
    history of 700,000 values is built without a Python step per value holding the interpreter)."""
    return np.ma.masked_array(round_significant(values, SERIES_SIGNIFICANT), mask=~present).tolist()


def finish_gauge(partial: Partial, aggregates: tuple[str, ...]) -> dict[str, list]:
    present = partial.count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {"avg": partial.total / partial.count, "min": partial.low, "max": partial.high,
                  "last": partial.last}
    out = {}
    for aggregate in aggregates:
        ok = present & np.isfinite(values[aggregate])
        out[aggregate] = _nullable(values[aggregate], ok)
    return out


def finish_counter(per_bucket_j: np.ndarray, present: np.ndarray, base_j: float,
                   aggregates: tuple[str, ...]) -> dict[str, list]:
    """A cumulative counter: min is its value at the bucket's start, max and last at its end, avg between."""
    end = base_j + np.cumsum(per_bucket_j)
    start = end - per_bucket_j
    values = {"avg": (start + end) / 2.0, "min": start, "max": end, "last": end}
    return {aggregate: _nullable(values[aggregate], present) for aggregate in aggregates}


def to_csv(answer: dict, aggregates: tuple[str, ...]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = list(answer["series"])
    writer.writerow(["timestamp"] + [f"{name}_{aggregate}" for name in names for aggregate in aggregates])
    for i, timestamp in enumerate(answer["timestamps"]):
        row = [timestamp]
        for name in names:
            for aggregate in aggregates:
                value = answer["series"][name][aggregate][i]
                row.append("" if value is None else repr(value))
        writer.writerow(row)
    return buffer.getvalue()


def gpu_indexes(con: Connection) -> list[int]:
    rows = con.execute("SELECT DISTINCT gpu FROM gpu_rollup_1h UNION SELECT DISTINCT gpu FROM gpu_rollup_1m "
                       "UNION SELECT DISTINCT gpu FROM (SELECT gpu FROM gpu_samples ORDER BY ts_ms DESC LIMIT 64)"
                       ).fetchall()
    return sorted(int(row[0]) for row in rows)


RING_VIEWS = {"samples": "ring_samples", "gpu_samples": "ring_gpu_samples"}


@dataclass(frozen=True)
class PendingRows:
    """Rows not stored yet, as the tables store them (``RowSpec.to_stored``; NaN reads as NULL)."""

    host: dict[str, np.ndarray] = field(default_factory=dict)
    gpu: dict[str, np.ndarray] = field(default_factory=dict)


def ring_source(table: str, first_ts_ms: int) -> str:
    """A FROM item of the ring's rows of ``table`` newer than anything stored in it."""
    view = RING_VIEWS[table]
    return (f"(SELECT * FROM {view} WHERE ts_ms > (SELECT coalesce(max(ts_ms), -1) FROM {table} "
            f"WHERE ts_ms >= {first_ts_ms})) AS {view}_new")


@contextmanager
def registered(con: Connection, pending: PendingRows | None) -> Iterator[dict[str, str]]:
    """Register the pending rows for one query; yields, per raw table with rows, the FROM item to read them."""
    sources: dict[str, str] = {}
    for table, columns in (("samples", pending.host if pending else {}), ("gpu_samples", pending.gpu if pending
                                                                           else {})):
        times = columns.get("ts_ms")
        if times is not None and len(times):
            con.register(RING_VIEWS[table], columns)
            sources[table] = ring_source(table, int(np.nanmin(times)))
    try:
        yield sources
    finally:
        for table in sources:
            con.unregister(RING_VIEWS[table])
