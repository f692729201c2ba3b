"""The models table: per model, its runs by status, mean accuracy, speed and latency of those completed, and
energy and carbon per run, per item and as SCI (``GET /api/models``); and the per-model counters behind
``/metrics`` (table ``model_counters``), kept by each write of a comparison inside its transaction on the writer
thread, so that a scrape reads one row a model and a kept model's counters never go down. Reads on a pool
cursor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tsstats.client.statistics import half_width
from tsstats.comparisons.validation import FINISHED, STATUSES
from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH
from tsstats.figures.formulas import rounded
from tsstats.storage.sql import Connection, first

MAX_MODELS_LISTED = 1000
UNITS = {"runs": "count", "accuracy": "%", "speed": "as reported", "latencyMs": "ms", "energyPerRunJ": "J",
         "energyPerItemJ": "J", "carbonPerItemG": "g CO2e", "sciPerItemG": "g CO2e"}
_FINISHED_WITH_ITEMS = "status IN ('completed', 'failed', 'cancelled') AND items IS NOT NULL AND energy_kwh IS NOT NULL"
_FINISHED_WITH_ENERGY = "status IN ('completed', 'failed', 'cancelled') AND energy_kwh IS NOT NULL"
# Per model, the runs' own figures: the mean /api/models gives of each, and its spread (each run's value, the runs
# it is taken over)
SPREAD_OF = {
    "energyPerRunJ": (f"energy_kwh * {JOULES_PER_KWH!r}", _FINISHED_WITH_ENERGY),
    "energyPerItemJ": (f"energy_kwh * {JOULES_PER_KWH!r} / items", _FINISHED_WITH_ITEMS),
    "carbonPerItemG": (f"carbon_kg * {GRAMS_PER_KG!r} / items", _FINISHED_WITH_ITEMS),
    "accuracy": ("accuracy", "status = 'completed'"),
    "speed": ("speed", "status = 'completed'"),
    "latencyMs": ("latency_ms", "status = 'completed'"),
}


def model_table(con: Connection, from_ms: int, to_ms: int, fair_only: bool = False) -> dict[str, Any]:
    """Per model, over the comparisons created in [from_ms, to_ms] that name it (a run naming two models counts
    for both; with ``fair_only``, the runs judged unfair are left out); sorted by name, at most 1,000 models:
    ``models`` says how many there are, ``omitted`` how many are not listed."""
    unfair = " AND fair IS NOT false" if fair_only else ""
    counts = ", ".join(f"count(*) FILTER (WHERE status = '{status}')" for status in STATUSES)
    rows = con.execute(
        f"SELECT model, count(*), {counts}, "
        f"sum(energy_kwh) FILTER (WHERE {_FINISHED_WITH_ITEMS}) * {JOULES_PER_KWH!r} "
        f"/ nullif(sum(items) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0), "
        f"sum(carbon_kg) FILTER (WHERE {_FINISHED_WITH_ITEMS}) * {GRAMS_PER_KG!r} "
        f"/ nullif(sum(items) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0), "
        f"sum(carbon_kg * {GRAMS_PER_KG!r} + coalesce(embodied_g, 0)) FILTER (WHERE {_FINISHED_WITH_ITEMS}) "
        f"/ nullif(sum(items) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0), "
        f"{', '.join(_moments(expression, where) for expression, where in SPREAD_OF.values())} "
        "FROM (SELECT unnest(models) AS model, * FROM comparisons WHERE created_ms >= ? AND created_ms <= ?"
        f"{unfair}) "
        f"GROUP BY model ORDER BY model LIMIT {MAX_MODELS_LISTED}", [from_ms, to_ms]).fetchall()
    items = []
    figures = 2 + len(STATUSES) + 3
    for row in rows:
        model, total, *by_status = row[:2 + len(STATUSES)]
        per_item, carbon_item, sci_item = row[2 + len(STATUSES):figures]
        moments = {name: row[figures + 3 * number:figures + 3 * number + 3] for number, name in enumerate(SPREAD_OF)}
        means = {name: found[1] for name, found in moments.items()}  # each run's own figure, averaged
        items.append({"model": model, "runs": {"total": total, **dict(zip(STATUSES, by_status, strict=True))},
                      "accuracy": rounded(means["accuracy"]), "speed": means["speed"],
                      "latencyMs": rounded(means["latencyMs"]), "energyPerRunJ": rounded(means["energyPerRunJ"]),
                      "energyPerItemJ": rounded(per_item), "carbonPerItemG": rounded(carbon_item),
                      "sciPerItemG": rounded(sci_item),
                      "spread": {name: _spread(*found) for name, found in moments.items()}})
    front = pareto_front([(item["accuracy"], item["energyPerItemJ"]) for item in items])
    for index, item in enumerate(items):
        item["pareto"] = None if index not in front and None in (item["accuracy"], item["energyPerItemJ"]) \
            else index in front
    total = first(con.execute(
        "SELECT count(DISTINCT model) FROM (SELECT unnest(models) AS model FROM comparisons WHERE created_ms >= ? "
        f"AND created_ms <= ?{unfair})", [from_ms, to_ms]).fetchall())[0] if len(items) == MAX_MODELS_LISTED \
        else len(items)
    return {"from": from_ms, "to": to_ms, "fairOnly": fair_only, "units": UNITS, "models": int(total),
            "omitted": int(total) - len(items), "items": items}


def pareto_front(points: list[tuple[float | None, float | None]]) -> set[int]:
    """The indices of the (accuracy, energy per item) points no other point dominates: none other is at least as
    accurate and at most as costly, and better in one of the two. Points missing either figure are on no front."""
    known = sorted((energy, accuracy, index) for index, (accuracy, energy) in enumerate(points)
                   if accuracy is not None and energy is not None)
    front: set[int] = set()
    best = -math.inf  # the most accurate of the cheaper points seen so far
    start = 0
    while start < len(known):  # one pass in order of cost, a group of equal costs at a time: O(n log n)
        end = start
        while end < len(known) and known[end][0] == known[start][0]:
            end += 1
        group_best = max(accuracy for _, accuracy, _ in known[start:end])
        if group_best > best:  # the group's most accurate ones are beaten neither by a cheaper point nor a peer
            front.update(index for _, accuracy, index in known[start:end] if accuracy == group_best)
        best, start = max(best, group_best), end
    return front


def _moments(expression: str, where: str) -> str:
    return (f"count({expression}) FILTER (WHERE {where}), avg({expression}) FILTER (WHERE {where}), "
            f"stddev_samp({expression}) FILTER (WHERE {where})")


def _spread(n: int, mean: float | None, stdev: float | None) -> dict[str, Any]:
    """n runs' mean, their standard deviation and the mean's 95 % interval (Student's t; null below 2 runs)."""
    if not n or mean is None:
        return {"n": int(n or 0), "mean": None, "stdev": None, "ci95Low": None, "ci95High": None}
    if n < 2 or stdev is None:
        return {"n": int(n), "mean": rounded(mean), "stdev": None, "ci95Low": None, "ci95High": None}
    half = half_width(n, stdev)
    return {"n": int(n), "mean": rounded(mean), "stdev": rounded(stdev), "ci95Low": rounded(mean - half),
            "ci95High": rounded(mean + half)}


def count_created(con: Connection, models: list[str], status: str, now_ms: int) -> None:
    """A comparison naming ``models`` was created with ``status`` (inside its transaction)."""
    if not models:
        return
    con.execute("INSERT INTO model_counters (model, active_ms) SELECT DISTINCT unnest(?::VARCHAR[]), ? "
                "ON CONFLICT DO NOTHING", [models, now_ms])
    con.execute(f"UPDATE model_counters SET {status} = {status} + 1, active_ms = greatest(active_ms, ?) "
                "WHERE model IN (SELECT unnest(?::VARCHAR[]))", [now_ms, models])


def count_moved(con: Connection, models: list[str], before: str, after: str, energy_j: float | None,
                now_ms: int) -> None:
    """A comparison naming ``models`` moved from ``before`` to ``after``; the first final status adds it and its
    energy to the counters (a final status replaced by another does not count it again)."""
    if not models or before == after:
        return
    first_end = after in FINISHED and before not in FINISHED
    con.execute(f"UPDATE model_counters SET {before} = {before} - 1, {after} = {after} + 1, "
                "finished_total = finished_total + ?, energy_j_total = energy_j_total + ?, "
                "active_ms = greatest(active_ms, ?) WHERE model IN (SELECT unnest(?::VARCHAR[]))",
                [int(first_end), (energy_j or 0.0) if first_end else 0.0, now_ms, models])


def count_deleted(con: Connection, models: list[str], status: str) -> None:
    """A comparison was deleted: its runs by status lose it; the counters keep what it added."""
    if models:
        con.execute(f"UPDATE model_counters SET {status} = {status} - 1 WHERE model IN "
                    "(SELECT unnest(?::VARCHAR[]))", [models])


@dataclass(frozen=True)
class ModelSeries:
    """The models ``/metrics`` shows (the most recently active, at most ``limit``) and how many it leaves out:
    (model, runs by status, runs finished, energy in J after PUE)."""

    rows: list[tuple[str, dict[str, int], int, float]]
    omitted: int


def model_series(con: Connection, limit: int) -> ModelSeries:
    rows = con.execute(f"SELECT model, {', '.join(STATUSES)}, finished_total, energy_j_total FROM model_counters "
                       "ORDER BY active_ms DESC, model LIMIT ?", [limit]).fetchall()
    total = first(con.execute("SELECT count(*) FROM model_counters").fetchall())[0]
    kept = [(row[0], dict(zip(STATUSES, row[1:1 + len(STATUSES)], strict=True)), int(row[-2]), float(row[-1]))
            for row in sorted(rows)]
    return ModelSeries(kept, int(total) - len(kept))
