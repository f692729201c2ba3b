"""The models table: per model, its runs by status, mean accuracy, speed and latency of those completed, and
energy and carbon per run, per item and as SCI (``GET /api/models``); and the per-model counters behind
``/metrics`` (table ``model_counters``), kept by each write of a comparison inside its transaction on the writer
thread, so that a scrape reads one row a model and a kept model's counters never go down.

The table over a range is the sum of its parts: per model, the counts, the sums behind the per-item figures, and
each figure's moments (runs, mean, sum of squared deviations, merged by Chan's formula). ``ModelHours`` keeps these
parts per model and hour of creation (and whether the run was judged unfair), write by write like the stats'
tally (``TallyRow`` before and after, applied once committed), so that ``model_table`` reads the whole hours of
its range from memory and asks SQL only for its two partial hours at the edges: its cost follows the models and
hours, not the comparisons. The parts are built in one pass on the writer thread at start, and again after a step
of the wall clock moved stamped times; until then, and beyond ``MAX_MODEL_HOURS`` of them, the whole range is read
from SQL. Reads on a pool cursor."""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsstats.client.statistics import half_width
from tsstats.comparisons.stats import TallyRow
from tsstats.comparisons.validation import FINISHED, STATUSES
from tsstats.core.units import GRAMS_PER_KG, HOUR_MS, JOULES_PER_KWH
from tsstats.figures.formulas import rounded
from tsstats.storage.sql import Connection, first

log = logging.getLogger("tsstats.models")
MAX_MODELS_LISTED = 1000
MAX_MODEL_HOURS = 100_000  # parts held in memory (about 400 bytes each); beyond, the table is read from SQL
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
# A part's columns: runs, runs by status, then over the finished runs with items and energy: items, energy (J),
# carbon (g), how many of them have carbon, carbon plus embodied (g); then each figure's runs, mean and sum of
# squared deviations
_COUNTED = 1 + len(STATUSES)
_SUMMED = 5
_MOMENTS = _COUNTED + _SUMMED
WIDTH = _MOMENTS + 3 * len(SPREAD_OF)
_PART_SQL = ", ".join([
    "count(*)", *(f"count(*) FILTER (WHERE status = '{status}')" for status in STATUSES),
    f"coalesce(sum(items) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0)",
    f"coalesce(sum(energy_kwh * {JOULES_PER_KWH!r}) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0)",
    f"coalesce(sum(carbon_kg * {GRAMS_PER_KG!r}) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0)",
    f"count(carbon_kg) FILTER (WHERE {_FINISHED_WITH_ITEMS})",
    f"coalesce(sum(carbon_kg * {GRAMS_PER_KG!r} + coalesce(embodied_g, 0)) FILTER (WHERE {_FINISHED_WITH_ITEMS}), 0)",
    *(f"count({expression}) FILTER (WHERE {where}), coalesce(avg({expression}) FILTER (WHERE {where}), 0), "
      f"coalesce(var_pop({expression}) FILTER (WHERE {where}) * count({expression}) FILTER (WHERE {where}), 0)"
      for expression, where in SPREAD_OF.values())])


def part_of(row: TallyRow) -> tuple[list[float], list[float | None]]:
    """One comparison's part, for each model it names: its counts and sums (the additive columns), and its own
    value of each figure (None where it has none), as ``_PART_SQL`` counts them."""
    counted = [1.0, *(float(row.status == status) for status in STATUSES)]
    finished = row.status in FINISHED
    completed = row.status == "completed"
    with_energy = finished and row.energy_kwh is not None
    with_items = with_energy and row.items is not None
    summed = [0.0] * _SUMMED
    energy_j = (row.energy_kwh or 0.0) * JOULES_PER_KWH
    carbon_g = None if row.carbon_kg is None else row.carbon_kg * GRAMS_PER_KG
    if with_items:
        assert row.items is not None
        summed = [row.items, energy_j, carbon_g or 0.0, float(carbon_g is not None),
                  0.0 if carbon_g is None else carbon_g + (row.embodied_g or 0.0)]
    items = row.items or 0.0
    values = [energy_j if with_energy else None, energy_j / items if with_items and items else None,
              carbon_g / items if with_items and carbon_g is not None and items else None,
              row.accuracy if completed else None, row.speed if completed else None,
              row.latency_ms if completed else None]
    return counted + summed, values


class ModelHours:
    """The models table's parts per (model, hour of creation, judged unfair), kept write by write (writer thread),
    read by ``model_table`` under a lock (any thread)."""

    def __init__(self, max_parts: int = MAX_MODEL_HOURS):
        self.max_parts = max_parts
        self.ready = False  # the parts equal the table: whole hours may be read from them
        self.stale = True  # the parts are to be built from the table
        self.rebuilds = 0
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._at: dict[tuple[str, int, bool], int] = {}
        self._names: dict[str, int] = {}
        self._parts = np.zeros((64, WIDTH))
        self._keys = np.zeros((64, 3), dtype=np.int64)  # model number, hour (ms), judged unfair

    # -- writes (writer thread) ---------------------------------------------------------------------------
    def apply(self, rows: list[tuple[TallyRow | None, TallyRow | None]]) -> None:
        """A committed transaction's comparisons, each as it was and as it is."""
        if self.ready:
            with self._lock:
                for before, after in rows:
                    self._count(before, -1)
                    self._count(after, +1)

    def changed(self) -> None:
        """Rows changed outside the write path (a step of the wall clock moved them): rebuild."""
        with self._lock:
            self.ready, self.stale = False, True

    def refresh(self, con: Connection) -> None:
        """Build the parts from the table (one pass) if they are to be built."""
        if self.stale:
            self.rebuild(con)

    def rebuild(self, con: Connection) -> None:
        rows = con.execute(
            f"SELECT model, created_ms // {HOUR_MS} * {HOUR_MS} AS hour, coalesce(fair = false, false) AS unfair, "
            f"{_PART_SQL} FROM (SELECT unnest(models) AS model, * FROM comparisons) GROUP BY model, hour, unfair "
            f"LIMIT {self.max_parts + 1}").fetchall()
        self.rebuilds += 1
        with self._lock:
            self._clear()
            self.stale = False
            if len(rows) > self.max_parts:
                self._overflowed()
                return
            self.ready = True
            self._grow(len(rows))
            for number, (model, hour, unfair, *part) in enumerate(rows):
                self._at[(model, int(hour), bool(unfair))] = number
                self._keys[number] = (self._names.setdefault(model, len(self._names)), hour, unfair)
                self._parts[number] = part

    def _overflowed(self) -> None:
        """More model-hours than ``max_parts``: read from SQL alone until the next rebuild."""
        log.warning("the models table has more than %d model-hours: it is read from SQL", self.max_parts)
        self.ready = False

    def _grow(self, needed: int) -> None:
        if needed > len(self._parts):
            size = max(needed, 2 * len(self._parts))
            self._parts = np.concatenate([self._parts, np.zeros((size - len(self._parts), WIDTH))])
            self._keys = np.concatenate([self._keys, np.zeros((size - len(self._keys), 3), dtype=np.int64)])

    def _count(self, row: TallyRow | None, sign: int) -> None:
        if row is None or not self.ready:
            return
        additive, values = part_of(row)
        hour = row.created_ms // HOUR_MS * HOUR_MS
        for model in row.models:
            key = (model, hour, row.fair is False)
            number = self._at.get(key)
            if number is None:
                if len(self._at) >= self.max_parts:
                    self._overflowed()
                    return
                number = self._at[key] = len(self._at)
                self._grow(number + 1)
                self._keys[number] = (self._names.setdefault(model, len(self._names)), hour, key[2])
            part = self._parts[number]
            part[:_MOMENTS] += sign * np.asarray(additive)
            for figure, value in enumerate(values):
                if value is not None:
                    _welford(part, _MOMENTS + 3 * figure, value, sign)

    # -- reads (any thread) ---------------------------------------------------------------------------------
    def whole_hours(self, from_ms: int, to_ms: int, fair_only: bool) -> tuple[int, int, list[str], np.ndarray] | None:
        """The hours [first, end) that lie whole within [from_ms, to_ms], and per model their parts summed
        (names, rows of ``WIDTH``); None when the parts cannot be read (not built, or no whole hour)."""
        first_hour = -(-from_ms // HOUR_MS) * HOUR_MS
        end = (to_ms + 1) // HOUR_MS * HOUR_MS
        if end <= first_hour:
            return None
        with self._lock:
            if not self.ready:
                return None
            held = len(self._at)
            keys = self._keys[:held]
            chosen = (keys[:, 1] >= first_hour) & (keys[:, 1] < end)
            if fair_only:
                chosen &= keys[:, 2] == 0
            parts, numbers = self._parts[:held][chosen].copy(), keys[chosen, 0]
            names = list(self._names)
        summed, present = merge_parts(numbers, parts, len(names))
        return first_hour, end, [names[number] for number in present], summed


def _welford(part: np.ndarray, at: int, value: float, sign: int) -> None:
    """Add (sign +1) or take out (-1) one value of a figure's runs, mean and sum of squared deviations."""
    n, mean, m2 = part[at], part[at + 1], part[at + 2]
    count = n + sign
    if count <= 0:
        part[at:at + 3] = 0.0
        return
    moved = mean + sign * (value - mean) / count
    part[at:at + 3] = count, moved, max(m2 + sign * (value - mean) * (value - moved), 0.0)


def merge_parts(numbers: np.ndarray, parts: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group number, the parts summed (counts and sums added, moments merged by Chan's formula); returns the
    merged rows and the group numbers they belong to (those present, ascending)."""
    present, inverse = np.unique(numbers, return_inverse=True)
    merged = np.zeros((len(present), WIDTH))
    for column in range(_MOMENTS):
        merged[:, column] = np.bincount(inverse, parts[:, column], len(present))
    for at in range(_MOMENTS, WIDTH, 3):
        n, mean = parts[:, at], parts[:, at + 1]
        total = np.bincount(inverse, n, len(present))
        grand = np.divide(np.bincount(inverse, n * mean, len(present)), total, out=np.zeros(len(present)),
                          where=total > 0)
        spread = parts[:, at + 2] + n * (mean - grand[inverse]) ** 2
        merged[:, at], merged[:, at + 1], merged[:, at + 2] = total, grand, np.bincount(inverse, spread, len(present))
    return merged, present


def model_table(con: Connection, from_ms: int, to_ms: int, fair_only: bool = False,
                hours: ModelHours | None = None) -> dict[str, Any]:
    """Per model, over the comparisons created in [from_ms, to_ms] that name it (a run naming two models counts
    for both; with ``fair_only``, the runs judged unfair are left out); sorted by name, at most 1,000 models:
    ``models`` says how many there are, ``omitted`` how many are not listed. With ``hours``, the whole hours of
    the range come from its parts and SQL reads the edges."""
    held = hours.whole_hours(from_ms, to_ms, fair_only) if hours is not None else None
    ranges = [(from_ms, to_ms)] if held is None else [(from_ms, held[0] - 1), (held[1], to_ms)]
    within = " OR ".join("created_ms BETWEEN ? AND ?" for _ in ranges)
    unfair = " AND fair IS NOT false" if fair_only else ""
    rows = con.execute(f"SELECT model, {_PART_SQL} FROM (SELECT unnest(models) AS model, * FROM comparisons "
                       f"WHERE ({within}){unfair}) GROUP BY model",
                       [bound for edges in ranges for bound in edges]).fetchall()
    names = [row[0] for row in rows] + (held[2] if held else [])
    parts = np.array([row[1:] for row in rows], dtype=float).reshape(len(rows), WIDTH)
    if held:
        parts = np.concatenate([parts, held[3]])
    listed = sorted(set(names))
    number = {name: index for index, name in enumerate(listed)}
    merged, present = merge_parts(np.array([number[name] for name in names], dtype=np.int64), parts, len(listed))
    items = [_model_row(listed[index], part) for index, part in zip(present[:MAX_MODELS_LISTED],
                                                                     merged[:MAX_MODELS_LISTED], strict=False)]
    front = pareto_front([(item["accuracy"], item["energyPerItemJ"]) for item in items])
    for index, item in enumerate(items):
        item["pareto"] = None if index not in front and None in (item["accuracy"], item["energyPerItemJ"]) \
            else index in front
    return {"from": from_ms, "to": to_ms, "fairOnly": fair_only, "units": UNITS, "models": len(present),
            "omitted": len(present) - len(items), "items": items}


def _model_row(model: str, part: np.ndarray) -> dict[str, Any]:
    """A model's row of the table from its merged part."""
    total, *by_status = (int(round(value)) for value in part[:_COUNTED])
    items, energy_j, carbon_g, with_carbon, sci_g = part[_COUNTED:_MOMENTS]
    moments = {name: (int(round(part[at])), float(part[at + 1]), float(part[at + 2]))
               for name, at in zip(SPREAD_OF, range(_MOMENTS, WIDTH, 3), strict=True)}
    means = {name: mean if n else None for name, (n, mean, _) in moments.items()}  # each run's own figure, averaged
    per_item = items > 0

    def of_items(value: float, known: bool = True) -> float | None:
        return rounded(float(value / items)) if per_item and known else None

    return {"model": model, "runs": {"total": total, **dict(zip(STATUSES, by_status, strict=True))},
            "accuracy": rounded(means["accuracy"]), "speed": means["speed"],
            "latencyMs": rounded(means["latencyMs"]), "energyPerRunJ": rounded(means["energyPerRunJ"]),
            "energyPerItemJ": of_items(energy_j), "carbonPerItemG": of_items(carbon_g, with_carbon > 0.5),
            "sciPerItemG": of_items(sci_g, with_carbon > 0.5),
            "spread": {name: _spread(n, means[name], math.sqrt(m2 / (n - 1)) if n >= 2 else None)
                       for name, (n, _, m2) in moments.items()}}


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
    """A comparison naming ``models`` was created with ``status`` (inside its transaction): the models it names
    that have counters are updated, and only those that have none yet are inserted (an insert that may conflict
    costs DuckDB several times an update)."""
    if not models:
        return
    named = sorted(set(models))
    found = {row[0] for row in con.execute(
        f"UPDATE model_counters SET {status} = {status} + 1, active_ms = greatest(active_ms, ?) "
        "WHERE model IN (SELECT unnest(?::VARCHAR[])) RETURNING model", [now_ms, named]).fetchall()}
    new = [model for model in named if model not in found]
    if new:
        con.execute(f"INSERT INTO model_counters (model, active_ms, {status}) SELECT unnest(?::VARCHAR[]), ?, 1",
                    [new, now_ms])


def count_moved(con: Connection, models: list[str], before: str, after: str, record: dict[str, Any],
                now_ms: int) -> None:
    """A comparison naming ``models`` moved from ``before`` to ``after``; the first final status adds it, its
    energy, items and carbon (of ``record``, as the API gives it) to the counters (a final status replaced by
    another does not count it again)."""
    if not models or before == after:
        return
    first_end = after in FINISHED and before not in FINISHED
    added = [record.get(name) or 0.0 if first_end else 0.0 for name in ("energyJ", "items", "carbonG")]
    con.execute(f"UPDATE model_counters SET {before} = {before} - 1, {after} = {after} + 1, "
                "finished_total = finished_total + ?, energy_j_total = energy_j_total + ?, "
                "items_total = items_total + ?, carbon_g_total = carbon_g_total + ?, "
                "active_ms = greatest(active_ms, ?) WHERE model IN (SELECT unnest(?::VARCHAR[]))",
                [int(first_end), *added, now_ms, models])


def count_deleted(con: Connection, models: list[str], status: str) -> None:
    """A comparison was deleted: its runs by status lose it; the counters keep what it added."""
    if models:
        con.execute(f"UPDATE model_counters SET {status} = {status} - 1 WHERE model IN "
                    "(SELECT unnest(?::VARCHAR[]))", [models])


@dataclass(frozen=True)
class ModelSeries:
    """The models ``/metrics`` shows (the most recently active, at most ``limit``) and how many it leaves out:
    (model, runs by status, runs finished, energy in J after PUE, items, carbon in g CO2e)."""

    rows: list[tuple[str, dict[str, int], int, float, float, float]]
    omitted: int


def model_series(con: Connection, limit: int) -> ModelSeries:
    rows = con.execute(f"SELECT model, {', '.join(STATUSES)}, finished_total, energy_j_total, items_total, "
                       "carbon_g_total FROM model_counters ORDER BY active_ms DESC, model LIMIT ?", [limit]).fetchall()
    total = first(con.execute("SELECT count(*) FROM model_counters").fetchall())[0]
    kept = [(row[0], dict(zip(STATUSES, row[1:1 + len(STATUSES)], strict=True)), int(row[-4]), float(row[-3]),
             float(row[-2]), float(row[-1])) for row in sorted(rows)]
    return ModelSeries(kept, int(total) - len(kept))
