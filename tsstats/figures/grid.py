"""The grid's carbon intensity and renewable share: the yearly average by region, from the packaged table (see
data/README.md), and the rows over time where a file or a feed gives them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from tsstats.core.timeparse import rfc3339_ms

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
