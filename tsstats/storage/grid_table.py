"""The grid's rows over time in the ``grid_intensity`` table: what is in force, and a batch that replaces what
it overlaps (in the caller's transaction, on the writer thread)."""

from __future__ import annotations

import numpy as np

from tsstats.figures.grid import GridSeries
from tsstats.figures.grid_rows import GridRow, with_ends
from tsstats.storage.sql import Connection


def load_series(con: Connection) -> GridSeries | None:
    found = con.execute("SELECT start_ms, end_ms, g_per_kwh, renewable_pct, source FROM grid_intensity "
                        "ORDER BY start_ms").fetchall()
    if not found:
        return None
    columns = list(zip(*found, strict=True))
    return GridSeries(np.array(columns[0], dtype=float), np.array(columns[1], dtype=float),
               np.array(columns[2], dtype=float), np.array(columns[3], dtype=float),
               tuple(sorted(set(columns[4]))))


def replace_rows(con: Connection, rows: list[GridRow], source: str) -> None:
    """Store rows (in the caller's transaction); they replace the rows they overlap."""
    spans = with_ends(rows)
    low, high = spans[0][0], spans[-1][1]
    # what the new rows overlap gives way: an earlier row ends where they start, a later one starts where
    # they end, one inside them goes
    con.execute("UPDATE grid_intensity SET end_ms = ? WHERE start_ms < ? AND end_ms > ?", [low, low, low])
    con.execute("UPDATE grid_intensity SET start_ms = ? WHERE start_ms >= ? AND start_ms < ? AND end_ms > ?",
                [high, low, high, high])
    con.execute("DELETE FROM grid_intensity WHERE start_ms >= ? AND start_ms < ?", [low, high])
    con.executemany("INSERT INTO grid_intensity VALUES (?, ?, ?, ?, ?)",
                    [(start, end, g, renewable, source) for start, end, g, renewable in spans])
