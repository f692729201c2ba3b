"""Reads on small pools of threads, each with its own cursor of the writing connection (DuckDB connections
are not shared across threads). A reopen of the file lets running reads finish and drops the old cursors.

Two lanes: light reads (a page of comparisons, one record, the offsets) have threads of their own, so heavy
ones (history over days, energy and model reports, exports, backups) never make them wait; at most
``MAX_HEAVY_IN_FLIGHT`` heavy reads run or wait at once, and one more is refused with ``ReadsBusy`` (503 with
``Retry-After``) instead of queueing without bound.

Also what DuckDB holds in memory now, by what holds it
(its buffer manager's tags: the block cache of base tables, hash tables, the WAL, ...), read on a pool thread for
``/metrics`` and the soak benchmark (``database_memory``).
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb

from tsstats.storage.sql import Connection, ReadsBusy, StoreUnavailable

log = logging.getLogger("tsstats.store")
REOPEN_WAIT_S = 10.0
HEAVY_WORKERS = 1 if (os.cpu_count() or 1) <= 2 else 2  # a 2-core machine keeps one core from heavy reads
MAX_HEAVY_IN_FLIGHT = 16  # running and waiting: the page alone asks for 7 at once
HEAVY_NICE = 10  # added to a heavy read thread's nice value


def lower_priority() -> None:
    """A heavy read's thread yields the CPU to the sampler and the event loop (Linux schedules threads on
    their own nice value; raising it needs no privilege)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HEAVY_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: the same priority as the rest
        pass


class ReadPool:
    def __init__(self, workers: int, connection: Callable[[], Connection | None],
                 unavailable: Callable[[], str | None], classify: Callable[[BaseException], None]):
        """``connection()``: the writing connection now (None while it is being reopened); ``unavailable()``:
        why reads are refused now, or None; ``classify(error)``: records a storage failure (and raises it)."""
        self._connection = connection
        self._unavailable = unavailable
        self._classify = classify
        self._local = threading.local()
        self._cursors: list[Connection] = []
        self._cursors_lock = threading.Lock()
        self._generation = 0  # bumped by a reopen: cursors of an older connection are dropped
        self._reads = threading.Condition()
        self._running = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tsstats-read")
        self._heavy_pool = ThreadPoolExecutor(max_workers=HEAVY_WORKERS, thread_name_prefix="tsstats-heavy-read",
                                              initializer=lower_priority)
        self.heavy_in_flight = 0  # event loop thread only

    def _cursor(self) -> Connection:
        local = self._local
        cursor = getattr(local, "cursor", None)
        if cursor is None or local.generation != self._generation:
            con = self._connection()
            assert con is not None  # read_now checked it under the lock
            cursor = con.cursor()
            local.cursor, local.generation = cursor, self._generation
            with self._cursors_lock:
                self._cursors.append(cursor)
        return cursor

    async def read(self, work: Callable[..., Any], *args: Any, heavy: bool = False) -> Any:
        """Run ``work(cursor, *args)`` on the light lane, or the heavy one, and return its result."""
        loop = asyncio.get_running_loop()
        if not heavy:
            return await loop.run_in_executor(self._pool, lambda: self.read_now(work, *args))
        if self.heavy_in_flight >= MAX_HEAVY_IN_FLIGHT:
            raise ReadsBusy(f"{self.heavy_in_flight} heavy reads (history, reports, exports, backups) are running "
                            "or waiting already, the most at once; try again in a moment")
        self.heavy_in_flight += 1
        running = loop.run_in_executor(self._heavy_pool, lambda: self.read_now(work, *args))
        running.add_done_callback(lambda _: self._heavy_done())
        return await running

    def _heavy_done(self) -> None:
        self.heavy_in_flight -= 1

    def read_now(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run a read in the calling thread on its own cursor; ``StoreUnavailable`` while the database is
        invalidated or being reopened."""
        with self._reads:
            reason = self._unavailable()
            if reason is not None or self._connection() is None:
                raise StoreUnavailable(reason or "the database is being reopened", retry_after_s=5)
            self._running += 1
        try:
            return work(self._cursor(), *args)
        except duckdb.Error as error:
            self._classify(error)
            raise
        finally:
            with self._reads:
                self._running -= 1
                self._reads.notify_all()

    def drain(self, replace: Callable[[], None]) -> None:
        """Let running reads finish (10 s at most), close every cursor and ``replace()`` the connection: reads
        started from here on take a cursor of the next connection."""
        with self._reads:
            self._generation += 1
            if not self._reads.wait_for(lambda: self._running == 0, timeout=REOPEN_WAIT_S):
                log.warning("reads still running after %g s; reopening anyway", REOPEN_WAIT_S)
            self.close_cursors()
            replace()

    def close_cursors(self) -> None:
        with self._cursors_lock:
            for cursor in self._cursors:
                try:
                    cursor.close()
                except duckdb.Error:
                    pass
            self._cursors.clear()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)
        self._heavy_pool.shutdown(wait=True)
        self.close_cursors()


@dataclass(frozen=True)
class DatabaseMemory:
    tag: str
    memory_bytes: int
    temporary_bytes: int  # spilled to the temporary directory


def database_memory(con: Connection) -> list[DatabaseMemory]:
    rows = con.execute("SELECT tag, memory_usage_bytes, temporary_storage_bytes FROM duckdb_memory() "
                       "ORDER BY tag").fetchall()
    return [DatabaseMemory(str(tag), int(memory), int(temporary)) for tag, memory, temporary in rows]
