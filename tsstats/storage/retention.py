"""Retention, the size cap and the records' room, on the writing connection (writer thread), in bounded passes.

Each pass deletes about the oldest ``RETENTION_ROWS`` of each table (an hour of raw samples at 10 Hz), so that the
writer never stalls for long; while a backlog lasts a pass runs every second, else every minute. Raw samples go
only once they are rolled up. Freed blocks are given back by a checkpoint once a backlog is done.

A pass costs what it deletes, not what the table holds: ``Floors`` remembers each table's oldest time (found by
one scan, again after a gap and once an hour) and the span of time that last held ``RETENTION_ROWS`` rows, so a
pass deletes ``time < floor + span`` (DuckDB skips the row groups past it) and moves the floor; no pass sorts or
counts the backlog.

Records (comparisons, phases, offsets, grid rows) are never deleted by the service, so within ``max_db_mb``
they may take at most ``RECORDS_SHARE`` of the cap (``RecordRoom``). What they take is estimated from their rows
and texts (``records_bytes``, measured on each retention pass), and each write adds what it brings; a write
beyond the room is refused with ``InsufficientStorage`` (507) naming the figures. Without a cap there is no
bound but the disk's (whose full state the store reports as 503).
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from tsstats.core.units import HOUR_MS, MIB, MS_PER_S
from tsstats.storage.sql import Connection, InsufficientStorage, first
from tsstats.storage.store import Store

log = logging.getLogger("tsstats.retention")
RETENTION_ROWS = 36_000  # of each table per pass at most: an hour of raw samples at 10 Hz
RETENTION_INTERVAL_S = 60.0
RETENTION_BACKLOG_S = 1.0  # while a backlog lasts: a pass a second
FIRST_SPAN_MS = RETENTION_ROWS * 100  # a first pass's span: RETENTION_ROWS rows at 10 Hz
FLOOR_HOLD_MS = 3_600_000  # a floor is found again after this long (rows written older than it, by a clock step)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each tier is kept, in seconds, and the file's cap in MB (None: no cap)."""

    raw_s: float
    minute_s: float
    hour_s: float
    max_db_mb: float | None = None


def retention_deletes(policy: RetentionPolicy, now_ms: float,
                      minutes_until: int | None) -> list[tuple[str, str, int]]:
    """(table, time column, cut-off) for every table, older rows to delete. Raw samples go only once
    they are rolled up."""
    raw_cut = int(now_ms - policy.raw_s * MS_PER_S)
    if minutes_until is not None:
        raw_cut = min(raw_cut, minutes_until)
    minute_cut = int(now_ms - policy.minute_s * MS_PER_S)
    hour_cut = int(now_ms - policy.hour_s * MS_PER_S)
    return [("samples", "ts_ms", raw_cut), ("gpu_samples", "ts_ms", raw_cut),
            ("rollup_1m", "bucket_ms", minute_cut), ("gpu_rollup_1m", "bucket_ms", minute_cut),
            ("rollup_1h", "bucket_ms", hour_cut), ("gpu_rollup_1h", "bucket_ms", hour_cut),
            ("outages", "end_ms", hour_cut)]


class Floors:
    """Per table, the oldest time it holds (every row is at or after it) and the span of time the last pass found
    to hold about ``RETENTION_ROWS`` rows; forgotten after ``FLOOR_HOLD_MS`` (writer thread)."""

    def __init__(self) -> None:
        self.floor: dict[str, int | None] = {}
        self.span: dict[str, int] = {}
        self.found_ms: dict[str, float] = {}
        self.scans = 0  # scans of a whole table for its oldest time

    def oldest(self, con: Connection, table: str, column: str, now_ms: float, after: int | None = None) -> int | None:
        """The table's oldest time (at or after ``after``), from memory while it holds."""
        if after is None and table in self.floor and now_ms - self.found_ms[table] < FLOOR_HOLD_MS:
            return self.floor[table]
        where = "" if after is None else f" WHERE {column} >= {int(after)}"
        found = first(con.execute(f"SELECT min({column}) FROM {table}{where}").fetchall())[0]
        self.scans += 1
        self.floor[table] = None if found is None else int(found)
        self.found_ms[table] = now_ms
        return self.floor[table]

    def moved(self, table: str, bound: int, spanned: int, deleted: int) -> None:
        """A pass deleted ``deleted`` rows before ``bound`` over ``spanned`` ms: the next span holds about
        ``RETENTION_ROWS`` (at most four times this one, at least a quarter)."""
        self.floor[table] = bound
        if deleted:
            self.span[table] = max(1, int(spanned * min(max(RETENTION_ROWS / deleted, 0.25), 4.0)))


def enforce_retention(con: Connection, policy: RetentionPolicy, now_ms: float, minutes_until: int | None,
                      floors: Floors | None = None) -> int:
    """Delete rows past their tier's retention, about the oldest ``RETENTION_ROWS`` of each table per call (an
    hour of raw samples at 10 Hz), so that the writer never stalls for long; returns the rows deleted (0: nothing
    left to do). ``floors`` is what the last passes learnt (a call without it finds each table's oldest time)."""
    floors = floors or Floors()
    deleted = 0
    for table, column, cut in retention_deletes(policy, now_ms, minutes_until):
        oldest = floors.oldest(con, table, column, now_ms)
        if oldest is None or oldest >= cut:
            continue
        span = floors.span.get(table, FIRST_SPAN_MS)
        bound = min(cut, oldest + span)
        gone = first(con.execute(f"DELETE FROM {table} WHERE {column} < ?", [bound]).fetchall())[0]
        if not gone:  # a gap: from the next oldest row on
            oldest = floors.oldest(con, table, column, now_ms, after=bound)
            if oldest is None or oldest >= cut:
                continue
            bound = min(cut, oldest + span)
            gone = first(con.execute(f"DELETE FROM {table} WHERE {column} < ?", [bound]).fetchall())[0]
        floors.moved(table, bound, bound - oldest, gone)
        deleted += gone
    return deleted


def used_bytes(con: Connection) -> int:
    """Bytes of the database file in use (blocks holding data; freed blocks count once checkpointed)."""
    _, _, block_size, _, used_blocks, _, _, _, _ = con.execute("SELECT * FROM pragma_database_size()").fetchall()[0]
    return int(block_size) * int(used_blocks)


def enforce_size_cap(con: Connection, cap_bytes: float, minutes_until: int | None) -> int:
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


class Retention:
    """Schedules the bounded passes of retention and the size cap (writer thread only)."""

    def __init__(self, policy: RetentionPolicy, store: Store, minutes_until: Callable[[], int | None]):
        self.policy = policy
        self.store = store
        self.minutes_until = minutes_until  # how far raw samples are rolled up: only those may go
        self.dirty = False  # rows were deleted: a checkpoint gives their blocks back
        self.room = RecordRoom(policy.max_db_mb)  # the records' share of the cap
        self.floors = Floors()  # each table's oldest time, so that a pass reads no more than it deletes
        if policy.max_db_mb is not None:
            self.room.measure(store.writer)

    def run_pass(self, now_ms: float) -> int:
        """One bounded pass of retention, then of the size cap; returns rows deleted (0: nothing to do)."""
        policy, store = self.policy, self.store
        deleted = store.transaction(lambda con: enforce_retention(con, policy, now_ms, self.minutes_until(),
                                                                      self.floors))
        if policy.max_db_mb is not None:
            self.room.measure(store.writer)
            cap_bytes = policy.max_db_mb * 1e6
            capped = store.transaction(lambda con: enforce_size_cap(con, cap_bytes, self.minutes_until()))
            if capped:
                store.checkpoint()  # freed blocks count only once checkpointed: measure after that
                log.info("database over %g MB: deleted the %d oldest rows", policy.max_db_mb, capped)
            deleted += capped
        if deleted:
            self.dirty = True
        return deleted

    def due_pass(self, now_ms: float) -> tuple[float, bool]:
        """Run a pass; (seconds until the next one, whether a checkpoint should follow now)."""
        try:
            busy = self.run_pass(now_ms) > 0
        except Exception as error:
            log.error("retention failed: %s", error)
            return RETENTION_INTERVAL_S, False
        if busy:
            return RETENTION_BACKLOG_S, False
        checkpoint, self.dirty = self.dirty, False
        return RETENTION_INTERVAL_S, checkpoint


RECORDS_SHARE = 0.5
RECORD_ROW_BYTES = 512  # a comparison's, a phase's or an offset's fixed columns, with room to spare
GRID_ROW_BYTES = 48
_MEASURE = (
    f"SELECT (SELECT count(*) * {RECORD_ROW_BYTES} + coalesce(sum(length(metadata) + length(name) "
    "+ coalesce(length(error), 0) + coalesce(length(accounting), 0)), 0) FROM comparisons) "
    f"+ (SELECT count(*) * {RECORD_ROW_BYTES} + coalesce(sum(length(name)), 0) FROM phases) "
    f"+ (SELECT count(*) * {RECORD_ROW_BYTES} + coalesce(sum(length(note)), 0) FROM offsets) "
    f"+ (SELECT count(*) * {GRID_ROW_BYTES} FROM grid_intensity)"
)


def records_bytes(con: Connection) -> int:
    return int(con.execute(_MEASURE).fetchall()[0][0])


class RecordRoom:
    """What the records take against their share of the cap (``used_bytes`` is set on the writer thread by
    ``measure`` and raised on the event loop by ``charge``: a plain int, each step atomic)."""

    def __init__(self, max_db_mb: float | None):
        self.max_db_mb = max_db_mb
        self.room_bytes = None if max_db_mb is None else max_db_mb * 1e6 * RECORDS_SHARE
        self.used_bytes = 0

    def measure(self, con: Connection) -> None:
        self.used_bytes = records_bytes(con)

    def charge(self, size_bytes: int) -> None:
        """Count a record write of about ``size_bytes``; ``InsufficientStorage`` when it does not fit."""
        if self.room_bytes is None:
            return
        if self.used_bytes + size_bytes > self.room_bytes:
            raise InsufficientStorage(
                f"the records (comparisons, phases, offsets, grid rows) take about {self.used_bytes / MIB:.1f} MiB, "
                f"the most max_db_mb ({self.max_db_mb:g} MB) leaves them ({RECORDS_SHARE:.0%} of it); delete old "
                "comparisons (DELETE /api/comparisons/{id}) or grid rows, or raise max_db_mb; nothing was written",
                size_bytes, max(int(self.room_bytes - self.used_bytes), 0))
        self.used_bytes += size_bytes
