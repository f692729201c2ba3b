"""The models table: per model, its runs by status, mean accuracy, speed and latency of those completed, and
energy and carbon per run, per item and as SCI (``GET /api/models``), and the per-model totals behind the
Prometheus counters. Reads on a pool cursor."""

from __future__ import annotations

from typing import Any

from tsstats.comparisons.validation import STATUSES
from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH
from tsstats.figures.formulas import rounded
from tsstats.storage.sql import Connection

MAX_MODELS_LISTED = 1000
UNITS = {"runs": "count", "accuracy": "%", "speed": "as reported", "latencyMs": "ms", "energyPerRunJ": "J",
         "energyPerItemJ": "J", "carbonPerItemG": "g CO2e", "sciPerItemG": "g CO2e"}
_FINISHED_WITH_ITEMS = "status IN ('completed', 'failed', 'cancelled') AND items IS NOT NULL AND energy_kwh IS NOT NULL"


def model_table(con: Connection, from_ms: int, to_ms: int, fair_only: bool = False) -> dict[str, Any]:
    """Per model, over the comparisons created in [from_ms, to_ms] that name it (a run naming two models counts
    for both; with ``fair_only``, the runs judged unfair are left out); sorted by name, at most 1,000 models."""
    unfair = " AND fair IS NOT false" if fair_only else ""
    counts = ", ".join(f"count(*) FILTER (WHERE status = '{status}')" for status in STATUSES)
    rows = con.execute(
        f"SELECT model, count(*), {counts}, "
        "avg(accuracy) FILTER (WHERE status = 'completed'), avg(speed) FILTER (WHERE status = 'completed'), "
        "avg(latency_ms) FILTER (WHERE status = 'completed'), "
        f"avg(energy_kwh) FILTER (WHERE energy_kwh IS NOT NULL AND status != 'running') * {JOULES_PER_KWH!r}, "
        f"sum(energy_kwh) FILTER (WHERE {_FINISHED_WITH_ITEMS}) * {JOULES_PER_KWH!r} "
        f"/ nullif(sum(items) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0), "
        f"sum(carbon_kg) FILTER (WHERE {_FINISHED_WITH_ITEMS}) * {GRAMS_PER_KG!r} "
        f"/ nullif(sum(items) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0), "
        f"sum(carbon_kg * {GRAMS_PER_KG!r} + coalesce(embodied_g, 0)) FILTER (WHERE {_FINISHED_WITH_ITEMS}) "
        f"/ nullif(sum(items) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0) "
        "FROM (SELECT unnest(models) AS model, * FROM comparisons WHERE created_ms >= ? AND created_ms <= ?"
        f"{unfair}) "
        f"GROUP BY model ORDER BY model LIMIT {MAX_MODELS_LISTED}", [from_ms, to_ms]).fetchall()
    items = []
    for row in rows:
        model, total, *by_status = row[:2 + len(STATUSES)]
        accuracy, speed, latency, per_run, per_item, carbon_item, sci_item = row[2 + len(STATUSES):]
        items.append({"model": model, "runs": {"total": total, **dict(zip(STATUSES, by_status, strict=True))},
                      "accuracy": rounded(accuracy), "speed": speed, "latencyMs": rounded(latency),
                      "energyPerRunJ": rounded(per_run), "energyPerItemJ": rounded(per_item),
                      "carbonPerItemG": rounded(carbon_item), "sciPerItemG": rounded(sci_item)})
    return {"from": from_ms, "to": to_ms, "fairOnly": fair_only, "units": UNITS, "items": items}


def model_totals(con: Connection) -> list[tuple[str, str, int, float]]:
    """(model, status, runs, energy in J after PUE) of every comparison, for ``/metrics``."""
    return con.execute(
        f"SELECT model, status, count(*), coalesce(sum(energy_kwh), 0) * {JOULES_PER_KWH!r} "
        "FROM (SELECT unnest(models) AS model, status, energy_kwh FROM comparisons) GROUP BY model, status "
        f"ORDER BY model, status LIMIT {MAX_MODELS_LISTED * len(STATUSES)}").fetchall()
