"""The DuckDB file: open and lock, apply ``schema.sql``, the one write path, and reads on a small pool.

One connection is opened and one thread writes through it (the sampler's: it runs queued writes between its
ticks). Anyone may ``write(work)``: the work is queued, run by the writer thread in one transaction, and the
future resolves once it has committed (as datasette's ``execute_write_fn``). Reads run on a pool whose
threads each hold their own cursor (DuckDB connections are not shared across threads).
"""

from __future__ import annotations

import asyncio
import logging
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

log = logging.getLogger("tsstats.store")

SCHEMA_VERSION = 3

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


class StoreUnavailable(StoreError):
    """The database cannot be written for now (a full disk, or a failure that invalidated it and is being
    repaired by reopening it); nothing of the refused work was written. Retry after ``retry_after_s``."""

    def __init__(self, reason: str, retry_after_s: int = 10):
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


_FULL_DISK = ("no space left on device", "disk quota exceeded", "file too large")


def storage_failure(path: str, error: BaseException) -> tuple[str, bool] | None:
    """What ``error`` says of the storage under ``path``: (the reason writes fail, whether DuckDB has
    invalidated the database so that it must be reopened), or None for an error of the work itself."""
    text = str(error)
    lowered = text.lower()
    invalidated = isinstance(error, duckdb.FatalException) or "database has been invalidated" in lowered
    directory = os.path.dirname(os.path.abspath(path))
    if any(words in lowered for words in _FULL_DISK):
        return f"the file system holding {directory} is full ({_first_line(text)})", invalidated
    if invalidated:
        return f"the database failed and is being reopened ({_first_line(text)})", True
    if isinstance(error, duckdb.IOException) or "could not write" in lowered or "read-only file system" in lowered:
        return f"the database file {path} cannot be written ({_first_line(text)})", False
    return None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "no detail"


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
        self.memory_limit, self.threads = memory_limit, threads
        self.failure: str | None = None  # why writes fail for now (a full disk, a reopen due); None when they work
        self.invalidated = False  # DuckDB refuses every statement until the file is reopened
        self.reopens = 0
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as error:
                raise StoreError(f"cannot create the directory {directory} for {path}: {error}") from None
        self._con = self._connect()
        try:
            self._apply_schema()
        except Exception:
            self._con.close()
            raise
        self._appenders: dict[str, Any] = {}
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        self._generation = 0  # bumped by a reopen: cursors of an older connection are dropped
        self._reads = threading.Condition()
        self._reads_running = 0
        self._pool = ThreadPoolExecutor(max_workers=read_workers, thread_name_prefix="tsstats-read")
        self._closed = False

    def _connect(self) -> duckdb.DuckDBPyConnection:
        path = self.path
        try:
            # background threads give the allocator's freed pages back to the system within a second or so;
            # without them a heavy query's working memory stays resident (measured: +82 MB against +23 MB)
            return duckdb.connect(path, config={"memory_limit": self.memory_limit, "threads": self.threads,
                                                "allocator_background_threads": True})
        except duckdb.IOException as error:
            if "lock" in str(error).lower():
                raise StoreLocked(_lock_message(path, error)) from None
            raise StoreError(f"cannot open database file {path}: {error}") from None
        except duckdb.Error as error:
            raise StoreError(f"cannot open database file {path}: {error}") from None

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

    def append_rows(self, spec: RowSpec, columns: dict[str, np.ndarray]) -> None:
        """``insert_rows`` committed on its own (the appender's flush is one transaction; writer thread only)."""
        self._attempt(lambda: self.insert_rows(spec, columns))

    def write(self, work: Callable[[duckdb.DuckDBPyConnection], Any],
              then: Callable[[duckdb.DuckDBPyConnection, Any], None] | None = None) -> Future:
        """Queue ``work(connection)`` to run in one transaction on the writer thread; the future holds its
        result once committed, or its exception (nothing of it is then written). ``then(connection, result)``
        runs on the writer thread once it has committed, before the future resolves. While the storage fails
        (``failure``), the write is refused at once with ``StoreUnavailable``."""
        future: Future = Future()
        if not self._accepting:
            future.set_exception(StoreError("the database is closing; the write was not made"))
            return future
        if self.failure is not None:
            future.set_exception(StoreUnavailable(self.failure))
            return future
        self._writes.put((work, then, future))
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
                work, then, future = self._writes.get_nowait()
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
            if then is not None:
                try:
                    then(self._con, result)
                except Exception:  # committed all the same: say so, and keep the writer running
                    log.exception("after a committed write")
            if committed is not None:
                committed(self._con)
            future.set_result(result)
        return done

    def stop_writes(self) -> None:
        """Refuse new writes (on shutdown); those already queued still run with the next ``run_writes``."""
        self._accepting = False

    def transaction(self, work: Callable[[duckdb.DuckDBPyConnection], Any]) -> Any:
        """Run ``work(connection)`` in one transaction on the writing connection (writer thread only). A failure
        of the storage raises ``StoreUnavailable`` and sets ``failure``; the next success clears it."""
        def run() -> Any:
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

        return self._attempt(run)

    def _attempt(self, run: Callable[[], Any]) -> Any:
        if self.invalidated:
            raise StoreUnavailable(self.failure or "the database is being reopened")
        try:
            result = run()
        except Exception as error:
            self._classify(error)
            raise
        if self.failure is not None:
            log.warning("the database can be written again")
            self.failure = None
        return result

    def _classify(self, error: BaseException, retry_after_s: int = 10) -> None:
        """Record a failure of the storage (and raise it as ``StoreUnavailable``); other errors pass."""
        found = storage_failure(self.path, error)
        if found is None:
            return
        reason, invalidated = found
        if self.failure != reason:
            log.error("database writes fail: %s", reason)
        self.failure = reason
        self.invalidated = self.invalidated or invalidated
        self._appenders.clear()  # an appender of a failed write may hold its rows
        raise StoreUnavailable(reason, retry_after_s) from error

    def checkpoint(self) -> None:
        """Checkpoint the WAL into the file (skipped while the storage fails: a failed checkpoint invalidates
        the database, and the next due one runs once writes work again)."""
        if self.failure is None:
            self._attempt(lambda: self._con.execute("CHECKPOINT"))

    def reopen(self) -> bool:
        """Close and reopen the file after DuckDB invalidated it (writer thread only): committed work is in the
        WAL and is replayed. Reads are let finish first and refused meanwhile. Writes stay refused until the
        writer's next try succeeds. Returns whether it reopened."""
        if not self.invalidated or self._closed:
            return False
        with self._reads:
            self._generation += 1  # reads started from here on take a cursor of the new connection
            if not self._reads.wait_for(lambda: self._reads_running == 0, timeout=10.0):
                log.warning("reads still running after 10 s; reopening anyway")
            self._close_connections()
            try:
                self._con = self._connect()
            except StoreError as error:
                log.error("reopening the database failed (tried again in a few seconds): %s", error)
                self._con = None
                return False
        self.invalidated = False  # ``failure`` stays until a write succeeds: the disk may still be full
        self.reopens += 1
        log.warning("reopened the database %s after it was invalidated", self.path)
        return True

    def _close_connections(self) -> None:
        self._appenders.clear()
        with self._cursors_lock:
            for cursor in self._cursors:
                try:
                    cursor.close()
                except duckdb.Error:
                    pass
            self._cursors.clear()
        if self._con is not None:
            try:
                self._con.close()
            except duckdb.Error:
                pass

    # -- reads (pool threads) -------------------------------------------------------------------------
    def _cursor(self) -> duckdb.DuckDBPyConnection:
        local = self._local
        cursor = getattr(local, "cursor", None)
        if cursor is None or local.generation != self._generation:
            cursor = self._con.cursor()
            local.cursor, local.generation = cursor, self._generation
            with self._cursors_lock:
                self._cursors.append(cursor)
        return cursor

    async def read(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run ``work(cursor, *args)`` on the read pool and return its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: self.read_now(work, *args))

    def read_now(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run a read in the calling thread on its own cursor. While the database is invalidated, or being
        reopened, it raises ``StoreUnavailable``."""
        with self._reads:
            if self.invalidated or self._con is None:
                raise StoreUnavailable(self.failure or "the database is being reopened", retry_after_s=5)
            self._reads_running += 1
        try:
            return work(self._cursor(), *args)
        except duckdb.Error as error:
            self._classify(error, retry_after_s=5)
            raise
        finally:
            with self._reads:
                self._reads_running -= 1
                self._reads.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        self._close_connections()


def first(rows: list[tuple]) -> tuple | None:
    """The first of fetched rows, or None. Results are always fetched whole: in DuckDB 2.0 a result left
    unfinished keeps its connection busy."""
    return rows[0] if rows else None
