"""Carbon intensity that changes over the day: rows of ``time, g_per_kwh, renewable_pct`` from a file
(``grid_intensity_file``) or a live feed (``POST /api/grid``), each in force from its time to the next row's,
parsed and checked here (a bad row is refused with its line or index).

The last row of a batch is in force for the batch's usual step (the median gap between its rows; one hour for
a single row). The rows live in the ``grid_intensity`` table (``storage.grid_table``) so that stored samples'
carbon can be summed in SQL; a feed's rows replace the rows they overlap.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from tsstats.core.numbers import decimal_number, shown
from tsstats.core.timeparse import LATEST_UNIX_SECONDS, TIME_RANGE_TEXT, rfc3339_ms, time_value
from tsstats.core.units import HOUR_MS

MAX_G_PER_KWH = 5000.0
MAX_FEED_ROWS = 10_000  # a feed's rows, in any format
LATEST_END_MS = int(LATEST_UNIX_SECONDS * 1000) + 1000  # the end of the time range
HEADER = ("time", "g_per_kwh", "renewable_pct")


@dataclass(frozen=True)
class GridColumns:
    """Rows with their ends, as columns (epoch ms, g CO2e/kWh, %): what is stored."""
    start_ms: np.ndarray
    end_ms: np.ndarray
    g_per_kwh: np.ndarray
    renewable_pct: np.ndarray


class GridRowsError(ValueError):
    """Bad rows; the message names the line (or row) and what is wrong."""


@dataclass(frozen=True)
class GridRow:
    start_ms: int
    g_per_kwh: float
    renewable_pct: float
    line: int  # where it came from, for messages


def _time_ms(value: str | int | float) -> int:
    if isinstance(value, str) and (value.strip()[:1] == "-" or value.strip() == "now"):
        raise ValueError(f"{value.strip()!r} is relative; give RFC 3339 with a zone or Unix seconds")
    return int(round(time_value(value, now=LATEST_UNIX_SECONDS) * 1000.0))


def _number(text, what: str, low: float, high: float) -> float:
    value: float | None = None
    if isinstance(text, str):
        value = decimal_number(text)
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text) if abs(text) < 1e300 else math.inf
    if value is None:
        raise ValueError(f"{what} must be a decimal number, not {shown(str(text))}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{what} must be from {low:g} to {high:g}, not {shown(str(text))}")
    return value


def parse_rows(items: list[tuple[int, object, object, object]], where: str) -> list[GridRow]:
    """(line, time, g_per_kwh, renewable_pct) items -> rows, in strictly increasing time."""
    rows: list[GridRow] = []
    for line, time_text, g_text, renewable_text in items:
        try:
            if not isinstance(time_text, (str, int, float)) or isinstance(time_text, bool):
                raise ValueError(f"time must be RFC 3339 text or Unix seconds, not {time_text!r}")
            start = _time_ms(time_text)
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
    if last_end_ms([row.start_ms for row in rows]) > LATEST_END_MS:
        raise GridRowsError(f"{where} {rows[-1].line}: the last row, in force for the batch's step, would end after "
                            f"{TIME_RANGE_TEXT.split(' to ')[1]}")
    return rows


def parse_csv(text: str, name: str, max_rows: int | None = None) -> list[GridRow]:
    """CSV rows (an optional header line ``time,g_per_kwh,renewable_pct``; blank lines and ``#`` comments
    skipped); more than ``max_rows`` rows (a feed's limit, whatever its format) are refused."""
    items: list[tuple[int, object, object, object]] = []
    for line, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
            continue
        cleaned = [field.strip() for field in fields]
        if tuple(cleaned) == HEADER:
            continue
        if len(cleaned) != 3:
            raise GridRowsError(f"{name} line {line}: expected 3 fields ({', '.join(HEADER)}), found {len(cleaned)}")
        items.append((line, cleaned[0], cleaned[1], cleaned[2]))
        if max_rows is not None and len(items) > max_rows:
            raise GridRowsError(f"{name}: at most {max_rows} rows, and line {line} is row {len(items)}")
    return parse_rows(items, f"{name} line")


def parse_json_rows(body) -> list[GridRow]:
    """``{"rows": [{"time": ..., "gPerKwh": ..., "renewablePct": ...}, ...]}`` from ``POST /api/grid``."""
    if isinstance(body, dict) and set(body) - {"rows"}:
        unknown = sorted(set(body) - {"rows"})[0]
        raise GridRowsError(f"unknown field {unknown!r}; the body holds rows only")
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


def _step_ms(starts: list[int]) -> int:
    """A batch's usual step: the median gap between its rows (one hour for a single row)."""
    return int(np.median(np.diff(starts))) if len(starts) > 1 else HOUR_MS


def last_end_ms(starts: list[int]) -> int:
    return starts[-1] + _step_ms(starts)


def with_ends(rows: list[GridRow]) -> GridColumns:
    """Each row in force to the next row's time; the last for the batch's usual step."""
    starts = np.array([row.start_ms for row in rows], dtype=np.int64)
    ends = np.append(starts[1:], last_end_ms(starts.tolist()))
    return GridColumns(starts, ends, np.array([row.g_per_kwh for row in rows]),
                       np.array([row.renewable_pct for row in rows]))
