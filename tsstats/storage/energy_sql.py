"""Sums of the stored energy columns over time (SQL): over a range of samples, each at the grid's intensity in
force at its time (an ASOF join with the grid's rows), over everything retained (closed hours, closed
minutes, then raw samples), and the per-sample joules of a comparison's run. The records they come back as
are ``figures.energy``'s; what they mean (PUE, carbon) is not known here."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tsstats.figures.energy import EnergySums, Totals
from tsstats.figures.grid import GridIntensity
from tsstats.storage.catalog import ENERGY_SUMS, energy_expression
from tsstats.storage.grid_table import USABLE_ROWS
from tsstats.storage.sql import Connection, first

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
