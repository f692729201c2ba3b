"""The grid's carbon intensity and renewable share: the yearly average by region, from the packaged table (see
data/README.md), and the rows over time where a file or a feed gives them. Pure; called from any thread.

Carbon intensity that changes over the day: rows of ``time, g_per_kwh, renewable_pct`` from a file
(``grid_intensity_file``) or a live feed (``POST /api/grid``), each in force from its time to the next row's,
parsed and checked here (a bad row is refused with its line or index). The last row of a batch is in force for
the batch's usual step (the median gap between its rows; one hour for a single row). The rows live in the
``grid_intensity`` table (``storage.energy``) so that stored samples' carbon can be summed in SQL; a feed's
rows replace the rows they overlap.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from tsstats.core.inputs import LATEST_UNIX_SECONDS, TIME_RANGE_TEXT, decimal_number, rfc3339_ms, shown, time_value
from tsstats.core.units import HOUR_MS, MS_PER_S

WORLD = "WORLD"
WORLD_INTENSITY = 473.0
WORLD_RENEWABLE = 32.0
WORLD_YEAR = 2024
ATTRIBUTION = "Our World in Data, based on Ember and Energy Institute (CC BY 4.0)"
WORLD_SOURCE = "Ember, Global Electricity Review 2025 (world, 2024)"


@dataclass(frozen=True)
class Grid:
    region: str
    name: str
    year: int
    g_per_kwh: float
    renewable_pct: float
    source: str
    intensity_overridden: bool = False
    renewable_overridden: bool = False

    def meta(self) -> dict[str, Any]:
        return {"region": self.region, "year": self.year, "gPerKwh": round(self.g_per_kwh, 3),
                "renewablePct": round(self.renewable_pct, 2), "source": self.source,
                "intensityOverride": self.intensity_overridden, "renewableOverride": self.renewable_overridden}


class UnknownRegion(ValueError):
    pass


def load_regions() -> dict[str, Grid]:
    text = resources.files("tsstats").joinpath("data/grid-intensity.csv").read_text(encoding="utf-8")
    regions = {WORLD: Grid(WORLD, "World", WORLD_YEAR, WORLD_INTENSITY, WORLD_RENEWABLE, WORLD_SOURCE)}
    for row in csv.DictReader(io.StringIO(text)):
        if not row["carbon_intensity_g_per_kwh"]:
            continue
        regions[row["iso_code"]] = Grid(row["iso_code"], row["country"], int(row["year"]),
                                        float(row["carbon_intensity_g_per_kwh"]),
                                        float(row["renewable_share_pct"] or 0.0), ATTRIBUTION)
    return regions


def resolve_grid(region: str, intensity: float | None = None, renewable: float | None = None) -> Grid:
    """The grid of ``region`` with the user's overrides applied; UnknownRegion lists the known codes."""
    regions = load_regions()
    grid = regions.get(region.upper())
    if grid is None:
        raise UnknownRegion(f"unknown grid region {region!r}; known: {', '.join(sorted(regions))}")
    return Grid(grid.region, grid.name, grid.year,
                grid.g_per_kwh if intensity is None else intensity,
                grid.renewable_pct if renewable is None else renewable,
                grid.source, intensity is not None, renewable is not None)


@dataclass(frozen=True)
class GridSeries:
    """The rows in force, as arrays (sorted, not overlapping)."""

    starts: np.ndarray
    ends: np.ndarray
    g: np.ndarray
    renewable: np.ndarray
    sources: tuple[str, ...]

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


class GridIntensity:
    """The grid's carbon intensity and renewable share at any time: the rows over time (a file, a live feed)
    where they exist, else the yearly average of the region (``average``). Replaced whole when rows change."""

    def __init__(self, average: Grid, series: GridSeries | None = None):
        self.average = average
        self.series = series

    @property
    def g_per_kwh(self) -> float:
        """The yearly average, used outside the rows over time."""
        return self.average.g_per_kwh

    @property
    def renewable_pct(self) -> float:
        return self.average.renewable_pct

    def lookup(self, ts_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(g/kWh, renewable %, within the rows over time) at each of ``ts_ms``."""
        ts = np.asarray(ts_ms, dtype=float)
        series = self.series
        if series is None:
            return (np.full(len(ts), self.g_per_kwh), np.full(len(ts), self.renewable_pct),
                    np.zeros(len(ts), dtype=bool))
        return series.lookup(ts, self.g_per_kwh, self.renewable_pct)

    def intensity_at(self, ts_ms: float) -> float:
        return float(self.lookup(np.array([ts_ms]))[0][0])

    def meta(self) -> dict:
        meta = self.average.meta()
        meta["overTime"] = self.series.meta() if self.series is not None else None
        return meta


MAX_G_PER_KWH = 5000.0
MAX_FEED_ROWS = 10_000  # a feed's rows, in any format
LATEST_END_MS = int(LATEST_UNIX_SECONDS * MS_PER_S) + 1000  # the end of the time range
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
    return int(round(time_value(value, now=LATEST_UNIX_SECONDS) * MS_PER_S))


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
