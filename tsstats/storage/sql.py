"""The connection type every layer names, opening a database file, and the fetch helper.

Results are always fetched whole (``fetchall``, ``fetchnumpy``): in DuckDB 2.0 a result left unfinished keeps
its connection busy.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np

from tsstats.core.units import SIGNIFICANT
from tsstats.storage.errors import StoreError, StoreLocked, lock_holder_pid, lock_message

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
