"""Carbon intensity that changes over the day: rows of ``time, g_per_kwh, renewable_pct`` from a file
(``grid_intensity_file``) or a live feed (``POST /api/grid``), each in force from its time to the next row's.

The last row of a batch is in force for the batch's usual step (the median gap between its rows; one hour for
a single row). Samples outside every row use the yearly average, and are counted. The rows live in the
``grid_intensity`` table so that stored samples' carbon can be summed in SQL; a feed's rows replace the rows
they overlap.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from .timeparse import LATEST_UNIX_SECONDS, parse_time, rfc3339_ms

HOUR_MS = 3_600_000
MAX_G_PER_KWH = 5000.0
MAX_FEED_ROWS = 10_000
HEADER = ("time", "g_per_kwh", "renewable_pct")


class GridRowsError(ValueError):
    """Bad rows; the message names the line (or row) and what is wrong."""


@dataclass(frozen=True)
class GridRow:
    start_ms: int
    g_per_kwh: float
    renewable_pct: float
    line: int  # where it came from, for messages


def _time_ms(text: str) -> int:
    value = text.strip()
    if value[:1] == "-" or value == "now":
        raise ValueError(f"{value!r} is relative; give RFC 3339 with a zone or Unix seconds")
    return int(round(parse_time(value, now=LATEST_UNIX_SECONDS) * 1000.0))


def _number(text, what: str, low: float, high: float) -> float:
    if isinstance(text, bool):
        raise ValueError(f"{what} must be a number, not {text!r}")
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, not {text!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{what} must be from {low:g} to {high:g}, not {text!r}")
    return value


def parse_rows(items: list[tuple[int, object, object, object]], where: str) -> list[GridRow]:
    """(line, time, g_per_kwh, renewable_pct) items -> rows, in strictly increasing time."""
    rows: list[GridRow] = []
    for line, time_text, g_text, renewable_text in items:
        try:
            if not isinstance(time_text, (str, int, float)) or isinstance(time_text, bool):
                raise ValueError(f"time must be RFC 3339 text or Unix seconds, not {time_text!r}")
            start = _time_ms(str(time_text))
            g = _number(g_text, "g_per_kwh", 0.0, MAX_G_PER_KWH)
            renewable = _number(renewable_text, "renewable_pct", 0.0, 100.0)
        except ValueError as error:
            raise GridRowsError(f"{where} {line}: {error}") from None
        if rows and start <= rows[-1].start_ms:
            raise GridRowsError(f"{where} {line}: time {rfc3339_ms(start)} is not after {where} {rows[-1].line}'s "
                                f"{rfc3339_ms(rows[-1].start_ms)}; rows must be in time order, without overlaps")
        rows.append(GridRow(start, g, renewable, line))
    if not rows:
        raise GridRowsError(f"{where}s: no rows of {', '.join(HEADER)}")
    return rows


def parse_csv(text: str, name: str) -> list[GridRow]:
    """CSV rows (an optional header line ``time,g_per_kwh,renewable_pct``; blank lines and ``#`` comments
    skipped)."""
    items = []
    for line, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        cleaned = [field.strip() for field in fields]
        if tuple(cleaned) == HEADER:
            continue
        if len(cleaned) != 3:
            raise GridRowsError(f"{name} line {line}: expected 3 fields ({', '.join(HEADER)}), found {len(cleaned)}")
        items.append((line, *cleaned))
    return parse_rows(items, f"{name} line")


def parse_json_rows(body) -> list[GridRow]:
    """``{"rows": [{"time": ..., "gPerKwh": ..., "renewablePct": ...}, ...]}`` from ``POST /api/grid``."""
    rows = body.get("rows") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not rows:
        raise GridRowsError("rows must be a list of {time, gPerKwh, renewablePct} objects")
    if len(rows) > MAX_FEED_ROWS:
        raise GridRowsError(f"rows must hold at most {MAX_FEED_ROWS} rows, not {len(rows)}")
    items = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) - {"time", "gPerKwh", "renewablePct"}:
            raise GridRowsError(f"row {index}: expected an object with time, gPerKwh and renewablePct")
        items.append((index, row.get("time"), row.get("gPerKwh"), row.get("renewablePct")))
    return parse_rows(items, "row")


def with_ends(rows: list[GridRow]) -> list[tuple[int, int, float, float]]:
    """(start_ms, end_ms, g, renewable) for each row: to the next row's time; the last for the median step."""
    starts = [row.start_ms for row in rows]
    step = int(np.median(np.diff(starts))) if len(starts) > 1 else HOUR_MS
    ends = starts[1:] + [starts[-1] + step]
    return [(row.start_ms, end, row.g_per_kwh, row.renewable_pct) for row, end in zip(rows, ends, strict=True)]


@dataclass(frozen=True)
class GridSeries:
    """The rows in force, as arrays (sorted, not overlapping)."""

    starts: np.ndarray
    ends: np.ndarray
    g: np.ndarray
    renewable: np.ndarray
    sources: tuple[str, ...]

    @classmethod
    def from_table(cls, con) -> GridSeries | None:
        found = con.execute("SELECT start_ms, end_ms, g_per_kwh, renewable_pct, source FROM grid_intensity "
                            "ORDER BY start_ms").fetchall()
        if not found:
            return None
        columns = list(zip(*found, strict=True))
        return cls(np.array(columns[0], dtype=float), np.array(columns[1], dtype=float),
                   np.array(columns[2], dtype=float), np.array(columns[3], dtype=float),
                   tuple(sorted(set(columns[4]))))

    def lookup(self, ts_ms: np.ndarray, default_g: float, default_renewable: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(g/kWh, renewable %, inside) in force at each of ``ts_ms``."""
        ts = np.asarray(ts_ms, dtype=float)
        index = np.searchsorted(self.starts, ts, side="right") - 1
        safe = np.clip(index, 0, len(self.starts) - 1)
        inside = (index >= 0) & (ts < self.ends[safe])
        return (np.where(inside, self.g[safe], default_g), np.where(inside, self.renewable[safe], default_renewable),
                inside)

    def meta(self) -> dict:
        return {"source": "+".join(self.sources), "rows": len(self.starts),
                "from": rfc3339_ms(int(self.starts[0])), "to": rfc3339_ms(int(self.ends[-1]))}


def replace_rows(con, rows: list[GridRow], source: str) -> None:
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

