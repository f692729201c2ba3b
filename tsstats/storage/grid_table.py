"""The grid's rows over time in the ``grid_intensity`` table: what is in force, a batch that replaces what it
overlaps, and rows removed by time (in the caller's transaction, on the writer thread).

A row the service cannot use (written by hand or by an older version: a time outside the one range, an end not
after its start, an intensity out of bounds) is left out of everything it computes, here and in the energy
sums' join (``USABLE_ROWS``), and named in the log at start-up instead of stopping it.
"""

from __future__ import annotations

import logging

import numpy as np

from tsstats.core.inputs import rfc3339_ms
from tsstats.figures.grid import LATEST_END_MS, MAX_G_PER_KWH, GridRow, GridSeries, with_ends
from tsstats.storage.sql import Connection

log = logging.getLogger("tsstats.grid")

_USABLE = (f"start_ms >= 0 AND end_ms > start_ms AND end_ms <= {LATEST_END_MS} "
           f"AND g_per_kwh BETWEEN 0 AND {MAX_G_PER_KWH} AND renewable_pct BETWEEN 0 AND 100")
USABLE_ROWS = f"(SELECT * FROM grid_intensity WHERE {_USABLE})"  # NaN is above every number in DuckDB: left out


def load_series(con: Connection) -> GridSeries | None:
    found = con.execute(f"SELECT start_ms, end_ms, g_per_kwh, renewable_pct FROM {USABLE_ROWS} "
                        "ORDER BY start_ms").fetchnumpy()
    if not len(found["start_ms"]):
        return None
    sources = con.execute(f"SELECT DISTINCT source FROM {USABLE_ROWS} ORDER BY source").fetchall()
    starts, ends, g, renewable = (np.asarray(found[key], dtype=float) for key in ("start_ms", "end_ms", "g_per_kwh",
                                                                                 "renewable_pct"))
    return GridSeries(starts, ends, g, renewable, tuple(row[0] for row in sources))


def _shown_time(epoch_ms: object) -> str:
    """A stored time as RFC 3339, or as stored where no calendar date can name it."""
    try:
        return rfc3339_ms(float(epoch_ms)) or f"{epoch_ms!r} ms"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return repr(epoch_ms)


def log_unusable(con: Connection, limit: int = 5) -> int:
    """Name the stored rows that are left out (at start-up, so once per run); returns how many there are."""
    unusable = con.execute(f"SELECT rowid, start_ms, end_ms, g_per_kwh, renewable_pct, source FROM grid_intensity "
                           f"WHERE NOT coalesce({_USABLE}, false) ORDER BY rowid").fetchall()
    for rowid, start, end, g, renewable, source in unusable[:limit]:
        log.warning("grid_intensity row %s (source %s: from %s to %s, g_per_kwh %r, renewable_pct %r) cannot be "
                    "used and is left out; remove it with DELETE /api/grid", rowid, source, _shown_time(start),
                    _shown_time(end), g, renewable)
    if len(unusable) > limit:
        log.warning("%d more grid_intensity rows cannot be used and are left out", len(unusable) - limit)
    return len(unusable)


def replace_rows(con: Connection, rows: list[GridRow], source: str) -> None:
    """Store rows (in the caller's transaction, in one statement whatever their number); they replace the rows
    they overlap."""
    spans = with_ends(rows)
    low, high = int(spans.start_ms[0]), int(spans.end_ms[-1])
    # what the new rows overlap gives way: an earlier row ends where they start, a later one starts where
    # they end, one inside them goes
    con.execute("UPDATE grid_intensity SET end_ms = ? WHERE start_ms < ? AND end_ms > ?", [low, low, low])
    con.execute("UPDATE grid_intensity SET start_ms = ? WHERE start_ms >= ? AND start_ms < ? AND end_ms > ?",
                [high, low, high, high])
    con.execute("DELETE FROM grid_intensity WHERE start_ms >= ? AND start_ms < ?", [low, high])
    batch = {"start_ms": spans.start_ms, "end_ms": spans.end_ms, "g_per_kwh": spans.g_per_kwh,
             "renewable_pct": spans.renewable_pct}
    con.register("grid_batch", batch)
    try:
        con.execute("INSERT INTO grid_intensity SELECT start_ms, end_ms, g_per_kwh, renewable_pct, ? FROM grid_batch",
                    [source])
    finally:
        con.unregister("grid_batch")


def remove_rows(con: Connection, from_ms: int, to_ms: int) -> int:
    """Remove the rows that start in [from_ms, to_ms), usable or not; returns how many went."""
    found = con.execute("DELETE FROM grid_intensity WHERE start_ms >= ? AND start_ms < ? RETURNING 1",
                        [from_ms, to_ms]).fetchall()
    return len(found)
