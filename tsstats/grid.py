"""Grid carbon intensity and renewable share by region, from the packaged table (see data/README.md)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources

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

    def intensity_at(self, ts_ms: float) -> float:
        """g CO2e/kWh in force at ``ts_ms``."""
        return self.g_per_kwh

    def meta(self) -> dict:
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
