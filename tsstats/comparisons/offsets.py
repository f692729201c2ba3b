"""Carbon offsets: the body of ``POST /api/offsets`` checked, and their SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tsstats.comparisons.validation import ListQuery, page_answer
from tsstats.core.inputs import (
    InputError,
    number_field,
    reject_unknown,
    require_object,
    rfc3339_ms,
    text_field,
    time_value,
)
from tsstats.core.units import GRAMS_PER_KG
from tsstats.figures.formulas import rounded
from tsstats.storage.sql import Connection, first

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
