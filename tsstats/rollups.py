"""Rollup tiers and retention, on the writing connection.

A bucket is written once, when it has closed: 1-minute rows from the samples of that minute, 1-hour rows
from the 1-minute rows of that hour. The sampler calls ``close_buckets`` in each flush's transaction, so
only the minutes (and hours) that just ended are read; after a restart or a crash the same call closes
every bucket still missing, from the finer tier, so the tiers always agree with the samples they came from.
"""

from __future__ import annotations

from .catalog import ENERGY_SUMS, GPU_METRICS, HOST_METRICS, rollup_aggregates, rollup_columns
from .store import first

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
# the most one retention pass deletes from each table: about 36,000 rows each (tens of ms)
RETENTION_CHUNK_MS = {"samples": HOUR_MS, "gpu_samples": HOUR_MS, "rollup_1m": 24 * HOUR_MS,
                      "gpu_rollup_1m": 24 * HOUR_MS, "rollup_1h": 720 * HOUR_MS, "gpu_rollup_1h": 720 * HOUR_MS,
                      "outages": 720 * HOUR_MS}


def tier_columns(gpu: bool) -> list[tuple[str, str]]:
    """(column, type) of a rollup table, host (``rollup_1m``, ``rollup_1h``) or per-GPU, as schema.sql declares
    them: the bucket, its sample count, the energy sums (host tables), and five aggregates per metric."""
    metrics = GPU_METRICS if gpu else HOST_METRICS
    head = [("bucket_ms", "BIGINT"), *([("gpu", "UTINYINT")] if gpu else []), ("samples", "INTEGER")]
    energy = [] if gpu else [(column, "DOUBLE") for column, _ in ENERGY_SUMS]
    return head + energy + [(name, "INTEGER" if name.endswith("_n") else "DOUBLE") for name in rollup_columns(metrics)]


def _insert_buckets(step_ms: int, table: str, source: str, metrics, energy: bool, gpu: bool,
                    from_raw: bool) -> str:
    """INSERT of the closed buckets of [?, ?) into ``table``, from raw samples or from the finer tier."""
    time_column = "ts_ms" if from_raw else "bucket_ms"
    key = ["gpu"] if gpu else []
    energy_values = [f"sum({expression if from_raw else column})" for column, expression in ENERGY_SUMS] \
        if energy else []
    columns = [name for name, _ in tier_columns(gpu)]
    values = [f"({time_column} // {step_ms}) * {step_ms}", *key, "count(*)" if from_raw else "sum(samples)",
              *energy_values, *rollup_aggregates(metrics, from_raw)]
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source} "
            f"WHERE {time_column} >= ? AND {time_column} < ? GROUP BY {''.join(k + ', ' for k in key)}"
            f"({time_column} // {step_ms}) ORDER BY 1")


MINUTE_SQL = (_insert_buckets(MINUTE_MS, "rollup_1m", "samples", HOST_METRICS, True, False, True),
              _insert_buckets(MINUTE_MS, "gpu_rollup_1m", "gpu_samples", GPU_METRICS, False, True, True))
HOUR_SQL = (_insert_buckets(HOUR_MS, "rollup_1h", "rollup_1m", HOST_METRICS, True, False, False),
            _insert_buckets(HOUR_MS, "gpu_rollup_1h", "gpu_rollup_1m", GPU_METRICS, False, True, False))


class Rollups:
    """Knows how far each tier is complete and closes the buckets that ended since."""

    def __init__(self) -> None:
        self.minutes_until: int | None = None  # every minute before this is in rollup_1m
        self.hours_until: int | None = None

    def load(self, con) -> None:
        minute = first(con.execute("SELECT max(bucket_ms) FROM rollup_1m").fetchall())[0]
        hour = first(con.execute("SELECT max(bucket_ms) FROM rollup_1h").fetchall())[0]
        oldest_sample = first(con.execute("SELECT min(ts_ms) FROM samples").fetchall())[0]
        if minute is not None:
            self.minutes_until = int(minute) + MINUTE_MS
        elif oldest_sample is not None:
            self.minutes_until = int(oldest_sample) // MINUTE_MS * MINUTE_MS
        if hour is not None:
            self.hours_until = int(hour) + HOUR_MS
        elif self.minutes_until is not None:
            first_minute = first(con.execute("SELECT min(bucket_ms) FROM rollup_1m").fetchall())[0]
            start = int(first_minute) if first_minute is not None else self.minutes_until
            self.hours_until = start // HOUR_MS * HOUR_MS

    def due(self, latest_ts_ms: float) -> bool:
        """Whether a sample at ``latest_ts_ms`` closes a bucket."""
        return self.minutes_until is None or int(latest_ts_ms) // MINUTE_MS * MINUTE_MS > self.minutes_until

    def close_buckets(self, con, latest_ts_ms: float, earliest_ts_ms: float | None = None) -> int:
        """Write every bucket that ended before the minute of ``latest_ts_ms``; returns minutes written.
        ``earliest_ts_ms`` is the oldest sample just written, which starts the tiers of an empty database."""
        minute_start = int(latest_ts_ms) // MINUTE_MS * MINUTE_MS
        if self.minutes_until is None:
            origin = int(earliest_ts_ms if earliest_ts_ms is not None else latest_ts_ms)
            self.minutes_until = origin // MINUTE_MS * MINUTE_MS
            self.hours_until = origin // HOUR_MS * HOUR_MS
        written = 0
        if minute_start > self.minutes_until:
            for statement in MINUTE_SQL:
                con.execute(statement, [self.minutes_until, minute_start])
            written = (minute_start - self.minutes_until) // MINUTE_MS
            self.minutes_until = minute_start
        hour_start = self.minutes_until // HOUR_MS * HOUR_MS
        if hour_start > self.hours_until:
            for statement in HOUR_SQL:
                con.execute(statement, [self.hours_until, hour_start])
            self.hours_until = hour_start
        return written


def retention_deletes(settings, now_ms: float, minutes_until: int | None) -> list[tuple[str, str, int]]:
    """(table, time column, cut-off) for every table, older rows to delete. Raw samples go only once
    they are rolled up."""
    raw_cut = int(now_ms - settings.retention_raw * 1000)
    if minutes_until is not None:
        raw_cut = min(raw_cut, minutes_until)
    minute_cut = int(now_ms - settings.retention_1m * 1000)
    hour_cut = int(now_ms - settings.retention_1h * 1000)
    return [("samples", "ts_ms", raw_cut), ("gpu_samples", "ts_ms", raw_cut),
            ("rollup_1m", "bucket_ms", minute_cut), ("gpu_rollup_1m", "bucket_ms", minute_cut),
            ("rollup_1h", "bucket_ms", hour_cut), ("gpu_rollup_1h", "bucket_ms", hour_cut),
            ("outages", "end_ms", hour_cut)]


def enforce_retention(con, settings, now_ms: float, minutes_until: int | None) -> int:
    """Delete rows past their tier's retention, at most ``RETENTION_CHUNK_MS`` of each table per call so
    that the writer never stalls for long (an hour of raw samples, a day of 1-minute rows, 30 days of 1-hour
    rows); returns the rows deleted (0: nothing left to do)."""
    deleted = 0
    for table, column, cut in retention_deletes(settings, now_ms, minutes_until):
        oldest = first(con.execute(f"SELECT min({column}) FROM {table}").fetchall())[0]
        if oldest is None or oldest >= cut:
            continue
        bound = min(cut, int(oldest) + RETENTION_CHUNK_MS[table])
        deleted += first(con.execute(f"DELETE FROM {table} WHERE {column} < ?", [bound]).fetchall())[0]
    return deleted


def retained_energy(con, hours_until: int | None, minutes_until: int | None,
                    before_ms: int = 2 ** 62) -> dict[str, float]:
    """Joules by component and seconds covered in everything retained before ``before_ms``: closed hours,
    then closed minutes after them, then raw samples after those."""
    keys = ("cpu_j", "gpu_j", "mem_j", "covered_s")
    hours = min(hours_until if hours_until is not None else -(2 ** 62), before_ms)
    minutes = max(min(minutes_until if minutes_until is not None else -(2 ** 62), before_ms), hours)
    rollup = ", ".join(f"coalesce(sum({key}), 0)" for key in keys)
    raw = ", ".join(f"coalesce(sum({dict(ENERGY_SUMS)[key]}), 0)" for key in keys)
    parts = [
        first(con.execute(f"SELECT {rollup} FROM rollup_1h WHERE bucket_ms < ?", [hours]).fetchall()),
        first(con.execute(f"SELECT {rollup} FROM rollup_1m WHERE bucket_ms >= ? AND bucket_ms < ?",
                          [hours, minutes]).fetchall()),
        first(con.execute(f"SELECT {raw} FROM samples WHERE ts_ms >= ? AND ts_ms < ?",
                          [minutes, before_ms]).fetchall()),
    ]
    return {key: float(sum(part[i] for part in parts)) for i, key in enumerate(keys)}


def used_bytes(con) -> int:
    """Bytes of the database file in use (blocks holding data; freed blocks count once checkpointed)."""
    _, _, block_size, _, used_blocks, _, _, _, _ = con.execute("SELECT * FROM pragma_database_size()").fetchall()[0]
    return int(block_size) * int(used_blocks)


def enforce_size_cap(con, cap_bytes: float, minutes_until: int | None) -> int:
    """Over the cap, delete the oldest hour of raw samples already rolled up, else the oldest day of 1-minute
    rows, else the oldest 30 days of 1-hour rows; returns the rows deleted (checkpoint before measuring again)."""
    if used_bytes(con) <= cap_bytes:
        return 0
    steps = (("samples", "ts_ms", HOUR_MS, ("gpu_samples",)), ("rollup_1m", "bucket_ms", 24 * HOUR_MS,
             ("gpu_rollup_1m",)), ("rollup_1h", "bucket_ms", 30 * 24 * HOUR_MS, ("gpu_rollup_1h",)))
    for table, column, span, companions in steps:
        oldest = con.execute(f"SELECT min({column}) FROM {table}").fetchall()[0][0]
        if oldest is None:
            continue
        bound = int(oldest) + span
        if table == "samples" and minutes_until is not None:
            bound = min(bound, minutes_until)
            if bound <= oldest:
                continue
        deleted = con.execute(f"DELETE FROM {table} WHERE {column} < ?", [bound]).fetchall()[0][0]
        for companion in companions:
            deleted += con.execute(f"DELETE FROM {companion} WHERE {column} < ?", [bound]).fetchall()[0][0]
        return deleted
    return 0
