"""Comparison records in SQL: the table's columns as the API's record, inserts, updates, reads and lists,
and what per-process attribution has given each (kept across restarts). Writes run inside the writer thread's
transaction; reads on a pool cursor.

Carbon offsets, records of their own: the body of ``POST /api/offsets`` checked, and their SQL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tsstats.comparisons.phases import phases_of
from tsstats.comparisons.stats import TALLY_COLUMNS, TallyRow
from tsstats.comparisons.validation import FINISHED, ComparisonUpdate, ListQuery, NewComparison, page_answer
from tsstats.core.inputs import (
    InputError,
    number_field,
    reject_unknown,
    require_object,
    rfc3339_ms,
    text_field,
    time_value,
)
from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH
from tsstats.figures.energy import Attributed
from tsstats.figures.formulas import per_item, rounded, sci_per_item
from tsstats.storage.sql import Connection, first

RECORD_COLUMNS = ("id, name, models, status, created_ms, started_ms, finished_ms, accuracy, speed, latency_ms, "
                  "error, metadata, energy_kwh, carbon_kg, pids, gpu_share, machine_kwh, "
                  "attributed_cpu_j, attributed_gpu_j, attributed_mem_j, items, embodied_g, accounting, conditions, "
                  "fair, ended_by, exited_ms")
_AT = {name.strip(): index for index, name in enumerate(RECORD_COLUMNS.split(","))}
EXITED_UNREPORTED = "its processes exited and no final status was reported within report_grace"


def record_from_row(row: tuple, phases: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The API's record of a comparison (``phases``: its named windows, oldest first)."""
    (id_, name, models, status, created, started, finished, accuracy, speed, latency_ms, error, metadata, energy,
     carbon, pids, gpu_share, machine_kwh, cpu_j, gpu_j, mem_j, items, embodied, accounting, conditions, fair,
     ended_by, exited_ms) = row
    judged = json.loads(conditions) if conditions else None
    by_component: dict[str, float] | None = None
    if pids and energy is not None and status in FINISHED:
        given = (cpu_j or 0.0) + (gpu_j or 0.0) + (mem_j or 0.0)
        scale = energy / given if given > 0 else 0.0  # kWh after PUE per joule given
        by_component = {"cpu": (cpu_j or 0.0) * scale, "gpu": (gpu_j or 0.0) * scale, "memory": (mem_j or 0.0) * scale}
    return {
        "id": id_,
        "name": name,
        "models": list(models),
        "status": status,
        "createdAt": rfc3339_ms(created),
        "startedAt": rfc3339_ms(started),
        "finishedAt": rfc3339_ms(finished),
        "accuracy": accuracy,
        "speed": speed,
        "latencyMs": latency_ms,
        "error": error,
        "metadata": json.loads(metadata),
        "energyKwh": rounded(energy),  # deprecated: energyJ
        "carbonKg": rounded(carbon),  # deprecated: carbonG
        "pids": list(pids) if pids is not None else None,
        "attribution": "process" if pids else "time_share",
        "gpuShare": gpu_share,
        "machineEnergyJ": rounded(None if machine_kwh is None else machine_kwh * JOULES_PER_KWH),
        "energyByComponentJ": None if by_component is None else
        {part: rounded(kwh * JOULES_PER_KWH) for part, kwh in by_component.items()},
        "machineEnergyKwh": rounded(machine_kwh),  # deprecated: machineEnergyJ
        "energyByComponentKwh": None if by_component is None else  # deprecated: energyByComponentJ
        {part: rounded(kwh) for part, kwh in by_component.items()},
        **run_figures(started, finished, energy, carbon, items, embodied, accounting),
        "conditions": judged["conditions"] if judged else None,
        "fair": fair,
        "unfairReasons": judged["unfairReasons"] if judged else [],
        "endedBy": ended_by if ended_by is not None or status not in FINISHED else _ended_by_before(error),
        "processesExitedAt": rfc3339_ms(exited_ms),
        "phases": phases or [],
    }


def _ended_by_before(error: str | None) -> str:
    """Who ended a run finished before schema version 6 kept it: the service only with its own error."""
    return "service" if error == "its processes exited before it reported a final status" else "client"


def run_figures(started: int | None, finished: int | None, energy_kwh: float | None, carbon_kg: float | None,
                items: float | None, embodied: float | None, accounting: str | None) -> dict[str, Any]:
    """A run's figures in joules and grams, per item and as SCI, and how they were obtained."""
    energy_j = None if energy_kwh is None else energy_kwh * JOULES_PER_KWH
    carbon_g = None if carbon_kg is None else carbon_kg * GRAMS_PER_KG
    how = json.loads(accounting) if accounting else {}
    finished_run = finished is not None and energy_kwh is not None
    return {
        "durationS": rounded((finished - started) / 1000.0) if started is not None and finished is not None
        else None,
        "energyJ": rounded(energy_j),
        "carbonG": rounded(carbon_g),
        "items": items,
        "energyPerItemJ": rounded(per_item(energy_j, items)),
        "carbonPerItemG": rounded(per_item(carbon_g, items)),
        "embodiedG": rounded(embodied),
        "sci": rounded(sci_per_item(carbon_g, embodied, items)),
        "sciIncludes": (["operational", "embodied"] if embodied is not None else ["operational"])
        if finished_run else [],
        "unavailable": ([] if embodied is not None else ["embodied"]) + ([] if items else ["items"])
        if finished_run else [],
        "methods": how.get("methods"),
        "estimated": how.get("estimated", []),
        "grid": how.get("grid"),
        "measurer": _measurer(how.get("measurer")),
    }


def _measurer(kept: dict[str, Any] | None) -> dict[str, Any] | None:
    """What tsstats itself used of the machine's energy over the run's window, as kept with its accounting."""
    if not kept:
        return None
    share = kept.get("sharePct")
    return {"energyJ": rounded(kept["energyJ"]), "machineEnergyJ": rounded(kept["machineEnergyJ"]),
            "sharePct": None if share is None else round(share, 4)}


def insert_comparison(con: Connection, new: NewComparison, now_ms: int) -> tuple[dict[str, Any], TallyRow]:
    """A new record: as the API gives it, and what the stats count of it."""
    started = now_ms if new.status == "running" else None
    pids = list(new.pids) if new.pids else None
    row = first(con.execute(
        f"INSERT INTO comparisons (name, models, status, created_ms, started_ms, metadata, pids, items) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {RECORD_COLUMNS}",
        [new.name, list(new.models), new.status, now_ms, started, new.metadata, pids, new.items]).fetchall())
    return record_from_row(row), tally_of(row)


def tally_of(row: tuple) -> TallyRow:
    """What the stats count of a record, from its row of ``RECORD_COLUMNS``."""
    return TallyRow.of(tuple(row[_AT[name.strip()]] for name in TALLY_COLUMNS.split(",")))


def fetch_comparison(con: Connection, comparison_id: int) -> dict[str, Any] | None:
    row = first(con.execute(f"SELECT {RECORD_COLUMNS} FROM comparisons WHERE id = ?", [comparison_id]).fetchall())
    return record_from_row(row, phases_of(con, [comparison_id]).get(comparison_id)) if row else None


@dataclass(frozen=True)
class Current:
    """Where a comparison stands: what the stats count of it (``tally``: its status, start, end, models, figures),
    its named processes, who ended it (a final status), and when its processes were all seen gone (its measured
    window closed then; None while they run or when none are named)."""

    tally: TallyRow
    pids: tuple[int, ...] | None
    ended_by: str | None
    exited_ms: int | None

    @property
    def status(self) -> str:
        return self.tally.status

    @property
    def started_ms(self) -> int | None:
        return self.tally.started_ms

    @property
    def finished_ms(self) -> int | None:
        return self.tally.finished_ms

    @property
    def models(self) -> list[str]:
        return list(self.tally.models)


def current_status(con: Connection, comparison_id: int) -> Current | None:
    row = first(con.execute(f"SELECT pids, ended_by, exited_ms, {TALLY_COLUMNS} FROM comparisons WHERE id = ?",
                            [comparison_id]).fetchall())
    return Current(TallyRow.of(row[3:]), tuple(row[0]) if row[0] else None, row[1], row[2]) if row else None


@dataclass(frozen=True)
class Finish:
    """What a comparison's end records besides its status: energy (kWh after PUE), carbon (kg), how the energy
    was attributed, and for per-process attribution the machine's energy over the same run."""

    energy_kwh: float | None = None
    carbon_kg: float | None = None
    finished_ms: int | None = None
    machine_kwh: float | None = None
    attributed: Attributed | None = None
    embodied_g: float | None = None
    accounting: str | None = None  # JSON: the method of each component, the estimated ones, the grid used
    conditions: str | None = None  # JSON: {"conditions", "unfairReasons"} (figures.fairness)
    fair: bool | None = None


def apply_update(con: Connection, comparison_id: int, update: ComparisonUpdate, now_ms: int,
                 finish: Finish = Finish(), ended_by: str | None = None, error_replaced: bool = False,
                 phases: bool = True) -> tuple[dict[str, Any], TallyRow]:
    """Write a transition, and give the record as the API gives it and what the stats count of it; ``ended_by``:
    who gave a final status; ``error_replaced``: the update's error (None included) replaces the record's, as a
    client's verdict replaces the service's; ``phases`` False: the comparison is known to have none (not read)."""
    started = now_ms if update.status == "running" else None
    finished = (finish.finished_ms if finish.finished_ms is not None else now_ms) \
        if update.status in FINISHED else None
    pids = list(update.pids) if update.pids else None
    error = "?" if error_replaced else "coalesce(?, error)"
    row = first(con.execute(
        f"UPDATE comparisons SET status = ?, started_ms = coalesce(?, started_ms), "
        f"finished_ms = coalesce(?, finished_ms), accuracy = coalesce(?, accuracy), "
        f"speed = coalesce(?, speed), latency_ms = coalesce(?, latency_ms), error = {error}, "
        f"ended_by = coalesce(?, ended_by), "
        f"energy_kwh = coalesce(?, energy_kwh), carbon_kg = coalesce(?, carbon_kg), pids = coalesce(?, pids), "
        f"machine_kwh = coalesce(?, machine_kwh), items = coalesce(?, items), embodied_g = coalesce(?, embodied_g), "
        f"accounting = coalesce(?, accounting), metadata = coalesce(?, metadata), "
        f"conditions = coalesce(?, conditions), fair = coalesce(?, fair), {_ATTRIBUTED_SET} "
        f"WHERE id = ? RETURNING {RECORD_COLUMNS}",
        [update.status, started, finished, update.accuracy, update.speed, update.latency_ms, update.error, ended_by,
         finish.energy_kwh, finish.carbon_kg, pids, finish.machine_kwh, update.items, finish.embodied_g,
         finish.accounting, update.metadata, finish.conditions, finish.fair, *_attributed_values(finish.attributed),
         comparison_id]).fetchall())
    held = phases_of(con, [comparison_id]).get(comparison_id) if phases else None
    return record_from_row(row, held), tally_of(row)


def close_window(con: Connection, comparison_id: int, finish: Finish, exited_ms: int) -> TallyRow:
    """Keep a running comparison's figures over its window, which closed when its processes were all seen gone
    at ``exited_ms``; its status waits for the client's report (or ``report_grace``). Gives what is counted of
    it now (its verdict on fairness may have changed)."""
    return tally_of(first(con.execute(
        f"UPDATE comparisons SET exited_ms = ?, finished_ms = ?, energy_kwh = ?, carbon_kg = ?, machine_kwh = ?, "
        f"embodied_g = ?, accounting = ?, conditions = ?, fair = ?, {_ATTRIBUTED_SET} WHERE id = ? "
        f"RETURNING {RECORD_COLUMNS}",
        [exited_ms, finish.finished_ms, finish.energy_kwh, finish.carbon_kg, finish.machine_kwh, finish.embodied_g,
         finish.accounting, finish.conditions, finish.fair, *_attributed_values(finish.attributed), comparison_id]
    ).fetchall()))


def awaiting_reports(con: Connection) -> dict[int, int]:
    """The running comparisons whose processes have exited, and when: they wait for their report."""
    return dict(con.execute("SELECT id, exited_ms FROM comparisons WHERE status = 'running' "
                            "AND exited_ms IS NOT NULL").fetchall())


_ATTRIBUTED_COLUMNS = ("attributed_cpu_j", "attributed_gpu_j", "attributed_mem_j", "attributed_jg", "gpu_share")
_ATTRIBUTED_SET = ", ".join(f"{column} = coalesce(?, {column})" for column in _ATTRIBUTED_COLUMNS)


def _attributed_values(given: Attributed | None) -> tuple:
    if given is None:
        return (None,) * len(_ATTRIBUTED_COLUMNS)
    return given.cpu_j, given.gpu_j, given.mem_j, given.joule_g_per_kwh, given.gpu_method


def _attributed_of(values: tuple) -> Attributed:
    cpu_j, gpu_j, mem_j, joule_g, gpu_method = values
    return Attributed(float(cpu_j or 0.0), float(gpu_j or 0.0), float(mem_j or 0.0), float(joule_g or 0.0),
                      gpu_method=gpu_method)


def attribution_loaded(con: Connection, comparison_id: int) -> Attributed:
    """What was saved of a comparison's per-process attribution (after a restart)."""
    row = first(con.execute(f"SELECT {', '.join(_ATTRIBUTED_COLUMNS)} FROM comparisons WHERE id = ?",
                            [comparison_id]).fetchall())
    return _attributed_of(row) if row is not None else Attributed()


def save_attribution(con: Connection, attributed: dict[int, Attributed]) -> None:
    """Keep what running comparisons have been given so far (a restart carries on from it)."""
    for comparison_id, given in attributed.items():
        con.execute(f"UPDATE comparisons SET {_ATTRIBUTED_SET} WHERE id = ?",
                    [*_attributed_values(given), comparison_id])


def running_with_pids(con: Connection) -> dict[int, tuple[tuple[int, ...], Attributed]]:
    rows = con.execute(f"SELECT id, pids, {', '.join(_ATTRIBUTED_COLUMNS)} FROM comparisons "
                       "WHERE status = 'running' AND pids IS NOT NULL AND exited_ms IS NULL").fetchall()
    return {row[0]: (tuple(row[1]), _attributed_of(row[2:])) for row in rows}


def list_comparisons(con: Connection, query: ListQuery) -> dict[str, Any]:
    conditions: list[str] = []
    params: list[Any] = []
    if query.status is not None:
        conditions.append("status = ?")
        params.append(query.status)
    if query.before is not None:
        conditions.append("id < ?")
        params.append(query.before)
    if query.fair is not None:
        conditions.append("fair = ?")
        params.append(query.fair)
    if query.model is not None:
        conditions.append("list_contains(models, ?)")
        params.append(query.model)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = con.execute(f"SELECT {RECORD_COLUMNS} FROM comparisons {where} ORDER BY id DESC LIMIT ?",
                       params + [query.limit + 1]).fetchall()
    page = rows[:query.limit]
    phases = phases_of(con, [row[0] for row in page])
    return page_answer([record_from_row(row, phases.get(row[0])) for row in page], len(rows))


def running_intervals(con: Connection, start_ms: int, end_ms: int) -> list[tuple[int, int, int]]:
    """(id, started, finished or end_ms) of comparisons that ran during [start_ms, end_ms]."""
    return con.execute(
        "SELECT id, started_ms, coalesce(finished_ms, ?) FROM comparisons "
        "WHERE started_ms IS NOT NULL AND started_ms <= ? AND coalesce(finished_ms, ?) >= ?",
        [end_ms, end_ms, end_ms, start_ms]).fetchall()


def delete_comparison(con: Connection, comparison_id: int) -> None:
    con.execute("DELETE FROM comparisons WHERE id = ?", [comparison_id])


MAX_OFFSET_KG = 1e9
MAX_NOTE = 1000


@dataclass(frozen=True)
class NewOffset:
    kg: float
    note: str
    at_ms: int


def validate_offset(body: Any, now: float) -> NewOffset:
    body = require_object(body)
    reject_unknown(body, ("kg", "note", "at"))
    if body.get("kg") is None:
        raise InputError("kg is required: the offset in kg CO2e, greater than 0", field="kg")
    kg = number_field(body, "kg", 0.0, MAX_OFFSET_KG, low_open=True)
    note = text_field(body, "note", MAX_NOTE, default="")
    at = body.get("at")
    if at is None:
        at_s = now
    else:
        if isinstance(at, bool) or not isinstance(at, (str, int, float)):
            raise InputError("at must be a time: RFC 3339, Unix seconds, or relative like -1d", field="at")
        try:
            at_s = time_value(at, now)
        except ValueError as error:
            raise InputError(f"at: {error}", field="at") from None
    assert kg is not None  # required above
    return NewOffset(kg=kg, note=note or "", at_ms=int(round(at_s * 1000)))


def insert_offset(con: Connection, offset: NewOffset, now_ms: int) -> dict[str, Any]:
    row = first(con.execute("INSERT INTO offsets (kg, note, at_ms, created_ms) VALUES (?, ?, ?, ?) "
                      "RETURNING id, kg, note, at_ms, created_ms",
                      [offset.kg, offset.note, offset.at_ms, now_ms]).fetchall())
    return offset_record(row)


def offset_record(row: tuple) -> dict[str, Any]:
    return {"id": row[0], "carbonG": rounded(row[1] * GRAMS_PER_KG), "kg": row[1], "note": row[2],
            "at": rfc3339_ms(row[3]), "createdAt": rfc3339_ms(row[4])}


def list_offsets(con: Connection, query: ListQuery) -> dict[str, Any]:
    """A page of offsets, the newest declared first (``before``: the previous page's ``next``), with the total
    of all of them."""
    where, params = ("WHERE id < ?", [query.before]) if query.before is not None else ("", [])
    rows = con.execute(f"SELECT id, kg, note, at_ms, created_ms FROM offsets {where} ORDER BY id DESC LIMIT ?",
                       params + [query.limit + 1]).fetchall()
    total_kg = offsets_total(con)
    return {**page_answer([offset_record(row) for row in rows[:query.limit]], len(rows)),
            "totalG": rounded(total_kg * GRAMS_PER_KG), "totalKg": rounded(total_kg)}  # totalKg: deprecated


def offsets_total(con: Connection) -> float:
    return float(first(con.execute("SELECT coalesce(sum(kg), 0) FROM offsets").fetchall())[0])
