"""Stored energy and the grid's intensity it is weighed by.

The grid's rows over time in the ``grid_intensity`` table: what is in force, a batch that replaces what it
overlaps, and rows removed by time (in the caller's transaction, on the writer thread).

A row the service cannot use (written by hand or by an older version: a time outside the one range, an end not
after its start, an intensity out of bounds) is left out of everything it computes, here and in the energy
sums' join (``USABLE_ROWS``), and named in the log at start-up instead of stopping it.

Sums of the stored energy columns over time (SQL): over a range of samples, each at the grid's intensity in
force at its time (an ASOF join with the grid's rows), over everything retained (closed hours, closed
minutes, then raw samples), and the per-sample joules of a comparison's run. The records they come back as
are ``figures.energy``'s; what they mean (PUE, carbon) is not known here.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from tsstats.core.inputs import rfc3339_ms
from tsstats.figures.energy import EnergySums, Totals
from tsstats.figures.grid import LATEST_END_MS, MAX_G_PER_KWH, GridIntensity, GridRow, GridSeries, with_ends
from tsstats.storage.catalog import ENERGY_SUMS, energy_expression
from tsstats.storage.sql import Connection, first

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


_SUMMED = ("cpu_j", "cpu_active_j", "gpu_j", "gpu_idle_j", "mem_j")  # EnergySums' fields, in order
_SUMS_SQL = (
    "SELECT " + ", ".join(f"coalesce(sum({dict(ENERGY_SUMS)[name]}), 0)" for name in _SUMMED)
    + ", count(*), coalesce(bit_and(methods), 0), coalesce(bit_or(methods), 0) "
    "FROM samples WHERE ts_ms >= ? AND ts_ms < ?"
)
_TOTAL_J = energy_expression("total_j", True)
_IN_FORCE = "CASE WHEN s.ts_ms < g.end_ms THEN g.{} END"
_SUMS_GRID_SQL = (
    "SELECT " + ", ".join(f"coalesce(sum({dict(ENERGY_SUMS)[name]}), 0)" for name in _SUMMED)
    + ", count(*), coalesce(bit_and(methods), 0), coalesce(bit_or(methods), 0), "
    f"coalesce(sum(({_TOTAL_J}) * coalesce({_IN_FORCE.format('g_per_kwh')}, $g)), 0), "
    f"coalesce(sum(({_TOTAL_J}) * coalesce({_IN_FORCE.format('renewable_pct')}, $r)), 0), "
    "count(*) FILTER (WHERE g.end_ms IS NULL OR s.ts_ms >= g.end_ms) "
    "FROM samples s ASOF LEFT JOIN " + USABLE_ROWS + " g ON s.ts_ms >= g.start_ms "
    "WHERE s.ts_ms >= $from AND s.ts_ms < $to"
)


def stored_sums(con: Connection, from_ms: float, to_ms: float, grid: GridIntensity) -> EnergySums:
    """Sums over stored samples in [from_ms, to_ms), with the carbon of each at the grid's intensity then."""
    if grid.series is None:  # one intensity for all: no join
        row = first(con.execute(_SUMS_SQL, [int(from_ms), int(to_ms)]).fetchall())
        cpu_j, cpu_active_j, gpu_j, gpu_idle_j, mem_j, rows, methods_all, methods_any = row
        sums = EnergySums(float(cpu_j), float(cpu_active_j), float(gpu_j), float(gpu_idle_j), float(mem_j), rows,
                          int(methods_all) if rows else 0xFF, int(methods_any))
        return replace(sums, joule_g=sums.total_j * grid.g_per_kwh, joule_renewable=sums.total_j * grid.renewable_pct)
    row = first(con.execute(_SUMS_GRID_SQL, {"from": int(from_ms), "to": int(to_ms), "g": grid.g_per_kwh,
                                             "r": grid.renewable_pct}).fetchall())
    cpu_j, cpu_active_j, gpu_j, gpu_idle_j, mem_j, rows, methods_all, methods_any, joule_g, renewable, outside = row
    return EnergySums(float(cpu_j), float(cpu_active_j), float(gpu_j), float(gpu_idle_j), float(mem_j), rows,
                      int(methods_all) if rows else 0xFF, int(methods_any), float(joule_g), float(renewable),
                      int(outside))


def sample_energy(con: Connection, start_ms: float, end_ms: float) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, joules before PUE) of every stored sample in [start_ms, end_ms], in time order."""
    found = con.execute(f"SELECT ts_ms, {_TOTAL_J} AS j FROM samples WHERE ts_ms BETWEEN ? AND ? ORDER BY ts_ms",
                        [int(start_ms), int(end_ms)]).fetchnumpy()
    return np.asarray(found["ts_ms"], dtype=float), np.asarray(found["j"], dtype=float)


def retained_energy(con: Connection, hours_until: int | None, minutes_until: int | None,
                    before_ms: int = 2 ** 62) -> Totals:
    """Joules by component and seconds covered in everything retained before ``before_ms``: closed hours,
    then closed minutes after them, then raw samples after those."""
    keys = ("cpu_j", "gpu_j", "mem_j", "covered_s")
    hours = min(hours_until if hours_until is not None else -(2 ** 62), before_ms)
    minutes = max(min(minutes_until if minutes_until is not None else -(2 ** 62), before_ms), hours)
    rollup = ", ".join(f"coalesce(sum({key}), 0)" for key in keys)
    raw = ", ".join(f"coalesce(sum({dict(ENERGY_SUMS)[key]}), 0)" for key in keys)
    parts = [
        first(con.execute(f"SELECT {rollup} FROM rollup_1h WHERE bucket_ms < ?", [hours]).fetchall()),
        first(con.execute(f"SELECT {rollup} FROM rollup_1m WHERE bucket_ms >= ? AND bucket_ms < ?",
                          [hours, minutes]).fetchall()),
        first(con.execute(f"SELECT {raw} FROM samples WHERE ts_ms >= ? AND ts_ms < ?",
                          [minutes, before_ms]).fetchall()),
    ]
    return Totals(*(float(sum(part[i] for part in parts)) for i in range(len(keys))))
