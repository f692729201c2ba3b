"""Batches of ring columns into a table, as the scaled integers the row definition stores (writer thread)."""

from __future__ import annotations

from typing import Any

import numpy as np

from tsstats.storage.rows import RowSpec
from tsstats.storage.sql import Connection

APPENDER_MAX_ROWS = 2000


def python_rows(scaled: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    """Rows of Python ints (None for NULL) for the appender."""
    columns = []
    for array in scaled.values():
        missing = np.isnan(array)
        values = np.where(missing, 0, array).astype(np.int64).tolist()
        if missing.any():
            values = [None if gap else value for value, gap in zip(values, missing.tolist(), strict=True)]
        columns.append(values)
    return list(zip(*columns, strict=True))


class BatchWriter:
    """Inserts batches through the writing connection: small ones through a kept appender per table, large ones
    through a scan of the numpy arrays."""

    def __init__(self, con: Connection):
        self.con = con
        self._appenders: dict[str, Any] = {}

    def forget(self) -> None:
        """Drop the kept appenders (after a failed write, which they may still hold, or a reopen)."""
        self._appenders.clear()

    def insert(self, spec: RowSpec, columns: dict[str, np.ndarray]) -> None:
        """Insert float64 ring columns into the spec's table in one statement (inside a transaction)."""
        table = spec.table
        scaled = spec.to_stored(columns)
        rows = len(next(iter(scaled.values())))
        if not rows:
            return
        if rows <= APPENDER_MAX_ROWS:
            appender = self._appenders.get(table)
            if appender is None:
                appender = self._appenders[table] = self.con.appender(table, columns=list(scaled))
            try:
                appender.append_rows(python_rows(scaled))
                appender.flush()
            except Exception:
                appender.clear()
                raise
            return
        name = f"batch_{table}"
        self.con.register(name, scaled)
        try:
            targets = ", ".join(scaled)
            self.con.execute(f"INSERT INTO {table} ({targets}) SELECT {targets} FROM {name}")
        finally:
            self.con.unregister(name)
