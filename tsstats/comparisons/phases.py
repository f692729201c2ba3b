"""Phases: named windows inside a running comparison (``run.phase("warm-up")``), which may nest; each gets its
own time, energy and carbon. Their bodies checked, and their SQL (writes in the writer thread's transaction)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tsstats.core.inputs import InputError, reject_unknown, require_object, rfc3339_ms, text_field, whole_number
from tsstats.figures.formulas import rounded
from tsstats.storage.sql import Connection, first

MAX_PHASE_NAME = 200
MAX_PHASES = 1000  # per comparison
PHASE_FINISHED = ("completed", "failed", "cancelled")
PHASE_COLUMNS = ("id, comparison_id, parent_id, name, status, started_ms, finished_ms, energy_j, carbon_g, "
                 "conditions, fair")


@dataclass(frozen=True)
class NewPhase:
    name: str
    parent: int | None


@dataclass(frozen=True)
class PhaseEnd:
    status: str


def validate_new_phase(body: Any) -> NewPhase:
    body = require_object(body)
    reject_unknown(body, ("name", "parent"))
    name = text_field(body, "name", MAX_PHASE_NAME)
    if not name:
        raise InputError(f"name is required: 1 to {MAX_PHASE_NAME} characters", field="name")
    parent = None
    if body.get("parent") is not None:
        parent = whole_number(body["parent"])
        if parent is None or parent < 1:
            raise InputError("parent must be the id of a running phase of this comparison", field="parent")
    return NewPhase(name, parent)


def validate_phase_end(body: Any) -> PhaseEnd:
    body = require_object(body)
    reject_unknown(body, ("status",))
    status = body.get("status")
    if status not in PHASE_FINISHED:
        raise InputError(f"status must be one of {', '.join(PHASE_FINISHED)}", field="status")
    return PhaseEnd(status)


def phase_record(row: tuple[Any, ...]) -> dict[str, Any]:
    id_, _comparison, parent, name, status, started, finished, energy_j, carbon_g, conditions, fair = row
    judged = json.loads(conditions) if conditions else None
    return {"id": id_, "name": name, "parent": parent, "status": status, "startedAt": rfc3339_ms(started),
            "finishedAt": rfc3339_ms(finished),
            "durationS": rounded((finished - started) / 1000.0) if finished is not None else None,
            "energyJ": rounded(energy_j), "carbonG": rounded(carbon_g),
            "conditions": judged["conditions"] if judged else None,
            "fair": fair, "unfairReasons": judged["unfairReasons"] if judged else []}


def insert_phase(con: Connection, comparison_id: int, new: NewPhase, now_ms: int) -> dict[str, Any]:
    count = first(con.execute("SELECT count(*) FROM phases WHERE comparison_id = ?", [comparison_id]).fetchall())[0]
    if count >= MAX_PHASES:
        raise InputError(f"a comparison holds at most {MAX_PHASES} phases", field="name", status=409)
    if new.parent is not None:
        parent = phase_status(con, comparison_id, new.parent)
        if parent != "running":
            raise InputError(f"no running phase {new.parent} in comparison {comparison_id}", field="parent",
                             status=409)
    row = first(con.execute(f"INSERT INTO phases (comparison_id, parent_id, name, status, started_ms) "
                            f"VALUES (?, ?, ?, 'running', ?) RETURNING {PHASE_COLUMNS}",
                            [comparison_id, new.parent, new.name, now_ms]).fetchall())
    return phase_record(row)


def phase_status(con: Connection, comparison_id: int, phase_id: int) -> str | None:
    row = first(con.execute("SELECT status FROM phases WHERE id = ? AND comparison_id = ?",
                            [phase_id, comparison_id]).fetchall())
    return row[0] if row else None


def finish_phases(con: Connection, status: str, ended: list[tuple[int, int, float | None, float | None, str, bool]]
                  ) -> None:
    """Close phases with their figures in one statement: ``ended`` holds (id, finished_ms, energy_j, carbon_g,
    judged, fair) of each, ``judged`` being its conditions and unfair reasons as JSON."""
    if not ended:
        return
    ids, finished, energy, carbon, judged, fair = (list(column) for column in zip(*ended, strict=True))
    con.execute(
        "UPDATE phases SET status = ?, finished_ms = v.finished_ms, energy_j = v.energy_j, carbon_g = v.carbon_g, "
        "conditions = v.conditions, fair = v.fair FROM (SELECT unnest(?::BIGINT[]) AS id, "
        "unnest(?::BIGINT[]) AS finished_ms, unnest(?::DOUBLE[]) AS energy_j, unnest(?::DOUBLE[]) AS carbon_g, "
        "unnest(?::VARCHAR[]) AS conditions, unnest(?::BOOLEAN[]) AS fair) v WHERE phases.id = v.id",
        [status, ids, finished, energy, carbon, judged, fair])


def set_phase_status(con: Connection, phase_ids: list[int], status: str) -> None:
    """The status of phases whose windows closed already (their figures stay)."""
    if phase_ids:
        con.execute("UPDATE phases SET status = ? WHERE id IN (SELECT unnest(?::BIGINT[]))", [status, phase_ids])


def phase_by_id(con: Connection, phase_id: int) -> dict[str, Any]:
    row = first(con.execute(f"SELECT {PHASE_COLUMNS} FROM phases WHERE id = ?", [phase_id]).fetchall())
    return phase_record(row)


def running_phases(con: Connection, comparison_id: int) -> list[tuple[int, int | None, int, int | None]]:
    """(id, parent, started, finished) of a comparison's running phases, newest first; ``finished`` is set where
    the phase's window closed when its run's processes exited (its status waits for a report)."""
    return con.execute("SELECT id, parent_id, started_ms, finished_ms FROM phases WHERE comparison_id = ? "
                       "AND status = 'running' ORDER BY id DESC", [comparison_id]).fetchall()



def phases_of(con: Connection, comparison_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The phases of each comparison, oldest first."""
    if not comparison_ids:
        return {}
    rows = con.execute(f"SELECT {PHASE_COLUMNS} FROM phases WHERE comparison_id IN "
                       f"(SELECT unnest(?::BIGINT[])) ORDER BY id", [comparison_ids]).fetchall()
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row[1], []).append(phase_record(row))
    return found


def delete_phases(con: Connection, comparison_id: int) -> None:
    con.execute("DELETE FROM phases WHERE comparison_id = ?", [comparison_id])
