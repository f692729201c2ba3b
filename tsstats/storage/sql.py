"""The connection type every layer names, opening a database file, what can go wrong with it (the errors the
rest of tsstats catches), and the fetch helpers.

Results are always fetched whole (``fetchall``, ``fetchnumpy``): in DuckDB 2.0 a result left unfinished keeps
its connection busy.
"""

from __future__ import annotations

import os
import re
from typing import Any

import duckdb
import numpy as np

from tsstats.core.units import SIGNIFICANT

Connection = duckdb.DuckDBPyConnection
DatabaseError = duckdb.Error  # what DuckDB raises, for the layers above, which do not import DuckDB


def _open(path: str, **options: Any) -> Connection:
    try:
        return duckdb.connect(path, **options)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise StoreLocked(lock_message(path, error), lock_holder_pid(error)) from None
        raise StoreError(f"cannot open database file {path}: {error}") from None
    except duckdb.Error as error:
        raise StoreError(f"cannot open database file {path}: {error}") from None


# After a task that allocated more than this, DuckDB hands its threads' cached allocations back (its default,
# 128 MiB, is sized for an analytics process, not a sidecar).
ALLOCATOR_FLUSH_THRESHOLD = "16MB"
MAX_TEMP_DIRECTORY_SIZE = "1GiB"  # what a query may spill to disk (DuckDB's default: 90 % of the free space)


def connect(path: str, memory_limit: str, threads: int) -> Connection:
    """Open (and lock) ``path`` for writing; StoreLocked when another process holds it."""
    # background threads give the allocator's freed pages back to the system within a second or so; without
    # them a heavy query's working memory stays resident (measured: +82 MB against +23 MB)
    return _open(path, config={"memory_limit": memory_limit, "threads": threads,
                               "allocator_background_threads": True,
                               "allocator_flush_threshold": ALLOCATOR_FLUSH_THRESHOLD,
                               "max_temp_directory_size": MAX_TEMP_DIRECTORY_SIZE})


def connect_read_only(path: str) -> Connection:
    """Open ``path`` read-only (the command line's own reads); StoreLocked when a running service holds it."""
    return _open(path, read_only=True)


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal (a file path in COPY, a host name in a SELECT)."""
    return "'" + value.replace("'", "''") + "'"


def first(rows: list[Any]) -> Any:
    """The first of fetched rows, or None."""
    return rows[0] if rows else None


def float_columns(fetched: dict[str, Any]) -> list[np.ndarray]:
    """The columns of a ``fetchnumpy()`` result as float64 arrays, NaN where the value is NULL."""
    return [np.asarray(np.ma.filled(np.ma.asarray(column).astype(float), np.nan)) for column in fetched.values()]


def significant_sql(expression: str, digits: int = SIGNIFICANT) -> str:
    """SQL for ``expression`` (a DOUBLE) to ``digits`` significant digits, as ``figures.formulas.rounded`` gives
    figures in JSON; zero, NULL and non-finite values as they are."""
    e = f"({expression})"
    return (f"(CASE WHEN {e} = 0 OR NOT isfinite({e}) THEN {e} "
            f"ELSE round({e}, {digits - 1} - CAST(floor(log10(abs({e}))) AS INTEGER)) END)")


class StoreError(RuntimeError):
    """The database cannot be opened or used; the message says which file and why."""


class StoreLocked(StoreError):
    """Another process holds the database file; ``pid`` is that process where DuckDB names it."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


class StoreUnavailable(StoreError):
    """The database cannot be written for now (a full disk, or a failure that invalidated it and is being
    repaired by reopening it); nothing of the refused work was written. Retry after ``retry_after_s``."""

    def __init__(self, reason: str, retry_after_s: int = 10):
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class ReadsBusy(StoreError):
    """As many heavy reads as may be at once are running or waiting (answered 503 with ``Retry-After``)."""

    retry_after_s = 1


class InsufficientStorage(StoreError):
    """A write that would not fit: the space it needs and the space there is (answered with 507)."""

    def __init__(self, message: str, needed_bytes: int, free_bytes: int):
        super().__init__(message)
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes


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


def lock_holder_pid(error: Exception) -> int | None:
    """The process DuckDB's lock error names as holding the file (``... (PID 1234) ...``)."""
    found = re.search(r"\(PID (\d+)\)", str(error))
    return int(found.group(1)) if found else None


def lock_message(path: str, error: Exception) -> str:
    text = str(error)
    holder = re.search(r"Conflicting lock is held in (.+?)(?:\.\s|$)", text)
    who = f" by {holder.group(1).strip()}" if holder else ""
    return (f"database file {path} is in use{who}; another tsstats may be serving it. "
            f"Stop it, or pass --db with another file.")
