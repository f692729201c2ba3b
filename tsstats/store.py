"""The DuckDB file: open and lock, apply ``schema.sql``, the one write path, and reads on a small pool.

One connection is opened and one thread writes through it (the sampler's: it runs queued writes between its
ticks). Anyone may ``write(work)``: the work is queued, run by the writer thread in one transaction, and the
future resolves once it has committed (as datasette's ``execute_write_fn``). Reads run on a pool whose
threads each hold their own cursor (DuckDB connections are not shared across threads).
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from typing import Any

import duckdb
import numpy as np

from .rows import RowSpec

SCHEMA_VERSION = 2

APPENDER_MAX_ROWS = 2000


def _python_rows(scaled: dict[str, np.ndarray]) -> list[tuple]:
    """Rows of Python ints (None for NULL) for the appender."""
    columns = []
    for array in scaled.values():
        missing = np.isnan(array)
        values = np.where(missing, 0, array).astype(np.int64).tolist()
        if missing.any():
            values = [None if gap else value for value, gap in zip(values, missing.tolist(), strict=True)]
        columns.append(values)
    return list(zip(*columns, strict=True))


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which file and why."""


class StoreLocked(StoreError):
    """Another process holds the database file."""


def schema_text() -> str:
    return resources.files("tsstats").joinpath("schema.sql").read_text(encoding="utf-8")


def _lock_message(path: str, error: Exception) -> str:
    text = str(error)
    holder = re.search(r"Conflicting lock is held in (.+?)(?:\.\s|$)", text)
    who = f" by {holder.group(1).strip()}" if holder else ""
    return (f"database file {path} is in use{who}; another tsstats may be serving it. "
            f"Stop it, or pass --db with another file.")


class Store:
    """Owns the connection to one DuckDB file."""

    def __init__(self, path: str, memory_limit: str = "256MB", threads: int = 2, read_workers: int = 2,
                 notify: Callable[[], None] | None = None):
        """``notify`` is called when a write is queued, to wake the writer thread."""
        self.path = path
        self._writes: queue.SimpleQueue = queue.SimpleQueue()
        self._notify = notify or (lambda: None)
        self._accepting = True
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as error:
                raise StoreError(f"cannot create the directory {directory} for {path}: {error}") from None
        try:
            self._con = duckdb.connect(path, config={"memory_limit": memory_limit, "threads": threads})
        except duckdb.IOException as error:
            if "lock" in str(error).lower():
                raise StoreLocked(_lock_message(path, error)) from None
            raise StoreError(f"cannot open database file {path}: {error}") from None
        except duckdb.Error as error:
            raise StoreError(f"cannot open database file {path}: {error}") from None
        try:
            self._apply_schema()
        except Exception:
            self._con.close()
            raise
        self._appenders: dict[str, Any] = {}
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=read_workers, thread_name_prefix="tsstats-read")
        self._closed = False

    # -- schema -----------------------------------------------------------------------------------
    def _apply_schema(self) -> None:
        con = self._con
        try:
            row = first(con.execute("SELECT value FROM schema_meta WHERE key = 'schema_version'").fetchall())
        except duckdb.CatalogException:
            row = None
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(f"database file {self.path} has schema version {row[0]}, newer than this "
                             f"tsstats understands ({SCHEMA_VERSION}); upgrade tsstats")
        con.execute("BEGIN")
        try:
            con.execute(schema_text())
            con.execute("INSERT OR REPLACE INTO schema_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise

    @property
    def writer(self) -> duckdb.DuckDBPyConnection:
        """The writing connection; used by the sampler thread only."""
        return self._con

    # -- key/value --------------------------------------------------------------------------------
    def get_meta(self, key: str, con: duckdb.DuckDBPyConnection | None = None) -> str | None:
        row = first((con or self._con).execute("SELECT value FROM schema_meta WHERE key = ?", [key]).fetchall())
        return row[0] if row else None

    # -- writes (sampler thread) --------------------------------------------------------------------
    def insert_rows(self, spec: RowSpec, columns: dict[str, np.ndarray]) -> None:
        """Insert a batch of float64 ring columns into the spec's table as its scaled integers, in one
        statement (call inside a transaction). Small batches go through a kept appender, large ones through
        a scan of the numpy arrays."""
        table = spec.table
        scaled = spec.to_stored(columns)
        rows = len(next(iter(scaled.values())))
        if not rows:
            return
        if rows <= APPENDER_MAX_ROWS:
            appender = self._appenders.get(table)
            if appender is None:
                appender = self._appenders[table] = self._con.appender(table, columns=list(scaled))
            try:
                appender.append_rows(_python_rows(scaled))
                appender.flush()
            except Exception:
                appender.clear()
                raise
            return
        name = f"batch_{table}"
        self._con.register(name, scaled)
        try:
            targets = ", ".join(scaled)
            self._con.execute(f"INSERT INTO {table} ({targets}) SELECT {targets} FROM {name}")
        finally:
            self._con.unregister(name)

    def write(self, work: Callable[[duckdb.DuckDBPyConnection], Any]) -> Future:
        """Queue ``work(connection)`` to run in one transaction on the writer thread; the future holds its
        result once committed, or its exception (nothing of it is then written)."""
        future: Future = Future()
        if not self._accepting:
            future.set_exception(StoreError("the database is closing; the write was not made"))
            return future
        self._writes.put((work, future))
        self._notify()
        return future

    def run_writes(self, budget_s: float | None = None,
                   committed: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> int:
        """Run queued writes, each in its own transaction, until none is left or ``budget_s`` has passed
        (writer thread only); returns how many ran. ``committed(connection)`` runs after each commit, before its
        writer hears of it, so that whatever the writer asks next already sees the write."""
        deadline = None if budget_s is None else time.monotonic() + budget_s
        done = 0
        while deadline is None or time.monotonic() < deadline or done == 0:
            try:
                work, future = self._writes.get_nowait()
            except queue.Empty:
                break
            done += 1
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = self.transaction(work)
            except BaseException as error:
                future.set_exception(error)
                continue
            if committed is not None:
                committed(self._con)
            future.set_result(result)
        return done

    def stop_writes(self) -> None:
        """Refuse new writes (on shutdown); those already queued still run with the next ``run_writes``."""
        self._accepting = False

    def transaction(self, work: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        """Run ``work(connection)`` in one transaction on the writing connection (writer thread only)."""
        con = self._con
        con.execute("BEGIN")
        try:
            result = work(con)
            con.execute("COMMIT")
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass
            raise
        return result

    def checkpoint(self) -> None:
        self._con.execute("CHECKPOINT")

    # -- reads (pool threads) -------------------------------------------------------------------------
    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            self._local.cursor = cursor
            with self._cursors_lock:
                self._cursors.append(cursor)
        return cursor

    async def read(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run ``work(cursor, *args)`` on the read pool and return its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: work(self._cursor(), *args))

    def read_now(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run a read in the calling thread on its own cursor (for the CLI and tests)."""
        return work(self._cursor(), *args)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        with self._cursors_lock:
            for cursor in self._cursors:
                try:
                    cursor.close()
                except duckdb.Error:
                    pass
        self._con.close()


def first(rows: list[tuple]) -> tuple | None:
    """The first of fetched rows, or None. Results are always fetched whole: in DuckDB 2.0 a result left
    unfinished keeps its connection busy."""
    return rows[0] if rows else None
