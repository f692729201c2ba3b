"""The DuckDB file: open and lock, apply the schema, the one write path, and reads on a small pool.

One connection is opened and one thread writes through it (the sampler's: it runs queued writes between its
ticks). Anyone may ``write(work)``: the work is queued, run by the writer thread in one transaction, and the
future resolves once it has committed (as datasette's ``execute_write_fn``). Reads run on a pool whose
threads each hold their own cursor (``reads.ReadPool``).
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import duckdb
import numpy as np

from tsstats.core.settings import default_of
from tsstats.storage.reads import ReadPool
from tsstats.storage.rows import BatchWriter, RowSpec
from tsstats.storage.schema import apply_schema
from tsstats.storage.sql import Connection, StoreError, StoreUnavailable, connect, first, storage_failure

log = logging.getLogger("tsstats.store")

Work = Callable[[Connection], Any]
Then = Callable[[Connection, Any], None]


class Store:
    """Owns the connection to one DuckDB file."""

    def __init__(self, path: str, memory_limit: str | None = None, threads: int | None = None,
                 read_workers: int = 2, notify: Callable[[], None] | None = None):
        """``notify`` is called when a write is queued, to wake the writer thread; ``memory_limit`` and
        ``threads`` default to the settings' defaults (``db_memory_limit``, ``db_threads``)."""
        memory_limit = memory_limit or default_of("db_memory_limit")
        threads = threads or default_of("db_threads")
        self.path = path
        self._writes: queue.SimpleQueue[tuple[Work, Then | None, Future[Any]]] = queue.SimpleQueue()
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
        self._con: Connection | None = connect(path, memory_limit, threads)
        try:
            apply_schema(self._con, path)
        except Exception:
            self._con.close()
            raise
        self._batches = BatchWriter(self._con)
        self._reads = ReadPool(read_workers, lambda: self._con, self._read_refusal,
                               lambda error: self._classify(error, retry_after_s=5))
        self._closed = False

    @property
    def writer(self) -> Connection:
        """The writing connection; used by the sampler thread only."""
        if self._con is None:
            raise StoreUnavailable(self.failure or "the database is being reopened")
        return self._con

    def get_meta(self, key: str, con: Connection | None = None) -> str | None:
        row = first((con or self.writer).execute("SELECT value FROM schema_meta WHERE key = ?", [key]).fetchall())
        return row[0] if row else None

    # -- writes (sampler thread) --------------------------------------------------------------------
    def insert_rows(self, spec: RowSpec, columns: dict[str, np.ndarray]) -> None:
        """Insert a batch of float64 ring columns into the spec's table as its scaled integers, in one
        statement (call inside a transaction)."""
        self._batches.insert(spec, columns)

    def append_rows(self, spec: RowSpec, columns: dict[str, np.ndarray]) -> None:
        """``insert_rows`` committed on its own (the appender's flush is one transaction; writer thread only)."""
        self._attempt(lambda: self.insert_rows(spec, columns))

    def write(self, work: Work, then: Then | None = None) -> Future[Any]:
        """Queue ``work(connection)`` to run in one transaction on the writer thread; the future holds its
        result once committed, or its exception (nothing of it is then written). ``then(connection, result)``
        runs on the writer thread once it has committed, before the future resolves. While the storage fails
        (``failure``), the write is refused at once with ``StoreUnavailable``."""
        future: Future[Any] = Future()
        if not self._accepting:
            future.set_exception(StoreError("the database is closing; the write was not made"))
            return future
        if self.failure is not None:
            future.set_exception(StoreUnavailable(self.failure))
            return future
        self._writes.put((work, then, future))
        self._notify()
        return future

    def run_writes(self, budget_s: float | None = None, committed: Callable[[Connection], None] | None = None,
                   rolled_back: Callable[[], None] | None = None) -> int:
        """Run queued writes, each in its own transaction, until none is left or ``budget_s`` has passed
        (writer thread only); returns how many ran. ``committed(connection)`` runs after each commit, before its
        writer hears of it, so that whatever the writer asks next already sees the write; ``rolled_back()`` after
        each that failed."""
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
                if rolled_back is not None:
                    rolled_back()
                future.set_exception(error)
                continue
            if then is not None:
                try:
                    then(self.writer, result)
                except Exception:  # committed all the same: say so, and keep the writer running
                    log.exception("after a committed write")
            if committed is not None:
                committed(self.writer)
            future.set_result(result)
        return done

    def stop_writes(self) -> None:
        """Refuse new writes (on shutdown); those already queued still run with the next ``run_writes``."""
        self._accepting = False

    def transaction(self, work: Work) -> Any:
        """Run ``work(connection)`` in one transaction on the writing connection (writer thread only). A failure
        of the storage raises ``StoreUnavailable`` and sets ``failure``; the next success clears it."""
        def run() -> Any:
            con = self.writer
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
        self._batches.forget()  # an appender of a failed write may hold its rows
        raise StoreUnavailable(reason, retry_after_s) from error

    def checkpoint(self) -> None:
        """Checkpoint the WAL into the file (skipped while the storage fails: a failed checkpoint invalidates
        the database, and the next due one runs once writes work again)."""
        if self.failure is None:
            self._attempt(lambda: self.writer.execute("CHECKPOINT"))

    def reopen(self) -> bool:
        """Close and reopen the file after DuckDB invalidated it (writer thread only): committed work is in the
        WAL and is replayed. Reads are let finish first and refused meanwhile. Writes stay refused until the
        writer's next try succeeds. Returns whether it reopened."""
        if not self.invalidated or self._closed:
            return False
        opened: list[Connection] = []

        def replace() -> None:
            self._close_writer()
            try:
                opened.append(connect(self.path, self.memory_limit, self.threads))
            except StoreError as error:
                log.error("reopening the database failed (tried again in a few seconds): %s", error)
                return
            self._con = opened[0]
            self._batches = BatchWriter(self._con)

        self._reads.drain(replace)
        if not opened:
            return False
        self.invalidated = False  # ``failure`` stays until a write succeeds: the disk may still be full
        self.reopens += 1
        log.warning("reopened the database %s after it was invalidated", self.path)
        return True

    def _close_writer(self) -> None:
        self._batches.forget()
        con, self._con = self._con, None
        if con is not None:
            try:
                con.close()
            except duckdb.Error:
                pass

    # -- reads (pool threads) -------------------------------------------------------------------------
    def _read_refusal(self) -> str | None:
        return (self.failure or "the database is being reopened") if self.invalidated else None

    async def read(self, work: Callable[..., Any], *args: Any, heavy: bool = False) -> Any:
        """Run ``work(cursor, *args)`` on the read pool (its heavy lane with ``heavy``) and return its result."""
        return await self._reads.read(work, *args, heavy=heavy)

    def read_now(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run a read in the calling thread on its own cursor (``StoreUnavailable`` while reopening)."""
        return self._reads.read_now(work, *args)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._reads.shutdown()
        self._close_writer()
