"""The Green Software Foundation's Software Carbon Intensity of a run: SCI = (E x I + M) / R.

E x I is the run's operational carbon (its energy at the grid's intensity through the run, location-based), M
the machine's embodied carbon amortised over the run's time and the run's share of the machine, R the items it
processed (the functional unit). Offsets never enter it: the specification forbids lowering SCI with them.
"""

from __future__ import annotations

from tsstats.core.units import GRAMS_PER_KG, YEAR_S


def embodied_g(embodied_kg: float, lifetime_years: float, duration_s: float, machine_share: float) -> float:
    """M: the machine's embodied emissions x (the run's time / its lifetime) x the run's share of the machine,
    in g CO2e."""
    share = min(max(machine_share, 0.0), 1.0)
    return embodied_kg * GRAMS_PER_KG * max(duration_s, 0.0) / (lifetime_years * YEAR_S) * share


def per_item(value: float | None, items: float | None) -> float | None:
    """``value`` per item; None without items (no functional unit) or without the value."""
    if value is None or not items:
        return None
    return value / items


def sci_per_item(operational_g: float | None, embodied: float | None, items: float | None) -> float | None:
    """(E x I + M) / R in g CO2e per item; M counts as 0 where the machine's embodied carbon is not declared
    (and the record says so)."""
    if operational_g is None:
        return None
    return per_item(operational_g + (embodied or 0.0), items)
