"""Comparisons and offsets: validation of request bodies, the state machine, and their SQL.

Validation functions are pure and raise ``InputError`` naming the field. The SQL functions take a
DuckDB connection: writes run on the sampler's writing connection, reads on a pool cursor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from . import energy, figures
from .attribution import Attributed
from .params import InputError, NonFiniteNumber, check_text, is_ascii_digits, single_values
from .snapshot import Comparisons
from .store import first
from .timeparse import parse_time, rfc3339_ms

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
CREATE_STATUSES = ("queued", "running")
TRANSITIONS = {
    "queued": ("running", "cancelled"),
    "running": ("completed", "failed", "cancelled"),
}
FINISHED = ("completed", "failed", "cancelled")
MAX_MODELS = 32
MAX_MODEL_NAME = 200
MAX_NAME = 200
MAX_ERROR = 4000
MAX_METADATA_BYTES = 16 * 1024
MAX_SPEED = 1e15
MAX_LATENCY_MS = 1e12
MAX_OFFSET_KG = 1e9
MAX_NOTE = 1000
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_PIDS = 256
MAX_PID = 2 ** 22  # Linux's pid_max limit


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def _reject_unknown(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise InputError(f"unknown field {key!r}; allowed: {', '.join(allowed)}", field=key)


def _number(body: dict[str, Any], name: str, low: float, high: float, low_open: bool = False) -> float | None:
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if isinstance(value, NonFiniteNumber):
        raise InputError(f"{name} must be a finite number, not {value.text}", field=name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number", field=name)
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
        raise InputError(f"{name} must be {bound} and at most {high:g}", field=name)
    return value


def _text(body: dict[str, Any], name: str, maximum: int, default: str | None = None) -> str | None:
    if name not in body or body[name] is None:
        return default
    value = body[name]
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string", field=name)
    if len(value) > maximum:
        raise InputError(f"{name} must be at most {maximum} characters", field=name)
    return check_text(value, name)


def validate_pids(body: dict[str, Any]) -> tuple[int, ...] | None:
    """``pids``: the processes doing a comparison's work (their children count too), 1 to 256 positive
    integers; whether they exist is checked by the caller."""
    pids = body.get("pids")
    if pids is None:
        return None
    if not isinstance(pids, list) or not pids:
        raise InputError(f"pids must be a list of 1 to {MAX_PIDS} process ids", field="pids")
    if len(pids) > MAX_PIDS:
        raise InputError(f"pids must hold at most {MAX_PIDS} process ids, not {len(pids)}", field="pids")
    for pid in pids:
        if isinstance(pid, bool) or not isinstance(pid, int) or not 1 <= pid <= MAX_PID:
            raise InputError(f"each pid must be a positive integer up to {MAX_PID}, not {json_text(pid)}",
                             field="pids")
    return tuple(dict.fromkeys(pids))


def json_text(value: Any) -> str:
    text = repr(value) if isinstance(value, NonFiniteNumber) else json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class NewComparison:
    name: str
    models: tuple[str, ...]
    status: str
    metadata: str
    pids: tuple[int, ...] | None = None


def validate_new_comparison(body: Any) -> NewComparison:
    body = _require_object(body)
    _reject_unknown(body, ("models", "name", "status", "metadata", "pids"))
    models = body.get("models")
    if models is None:
        raise InputError("models is required: a list of 1 to 32 model names", field="models")
    if not isinstance(models, list):
        raise InputError("models must be a list of model names", field="models")
    if not 1 <= len(models) <= MAX_MODELS:
        raise InputError(f"models must hold 1 to {MAX_MODELS} names, not {len(models)}", field="models")
    for model in models:
        if not isinstance(model, str) or not 1 <= len(model) <= MAX_MODEL_NAME:
            raise InputError(f"each model name must be a string of 1 to {MAX_MODEL_NAME} characters",
                             field="models")
        check_text(model, "models")
    name = _text(body, "name", MAX_NAME)
    if name is None:
        name = " vs ".join(models)[:MAX_NAME]
    status = body.get("status", "queued")
    if status not in CREATE_STATUSES:
        raise InputError(f"status must be one of {', '.join(CREATE_STATUSES)}", field="status")
    metadata = body.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InputError("metadata must be a JSON object", field="metadata")
    try:
        encoded = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
    except TypeError:  # a NaN or Infinity inside
        raise InputError("metadata must hold only finite numbers", field="metadata") from None
    check_text(encoded, "metadata")
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InputError(f"metadata must be at most {MAX_METADATA_BYTES} bytes as JSON", field="metadata")
    return NewComparison(name=name, models=tuple(models), status=status, metadata=encoded, pids=validate_pids(body))


@dataclass(frozen=True)
class ComparisonUpdate:
    status: str
    accuracy: float | None
    speed: float | None
    latency_ms: float | None
    error: str | None
    pids: tuple[int, ...] | None = None


def validate_update(body: Any) -> ComparisonUpdate:
    body = _require_object(body)
    _reject_unknown(body, ("status", "accuracy", "speed", "latencyMs", "error", "pids"))
    status = body.get("status")
    if status is None:
        raise InputError("status is required", field="status")
    if status not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}", field="status")
    latency_ms = _number(body, "latencyMs", 0.0, MAX_LATENCY_MS)
    if latency_ms is not None and status not in FINISHED:
        raise InputError(f"latencyMs is reported with a final status ({', '.join(FINISHED)}), not {status}",
                         field="latencyMs")
    return ComparisonUpdate(
        status=status,
        accuracy=_number(body, "accuracy", 0.0, 100.0),
        speed=_number(body, "speed", 0.0, MAX_SPEED),
        latency_ms=latency_ms,
        error=_text(body, "error", MAX_ERROR),
        pids=validate_pids(body),
    )


def check_transition(current: str, wanted: str) -> None:
    if wanted not in TRANSITIONS.get(current, ()):
        allowed = TRANSITIONS.get(current)
        hint = f"allowed from {current}: {', '.join(allowed)}" if allowed else f"{current} is final"
        raise InputError(f"a {current} comparison cannot become {wanted}; {hint}", field="status", status=409)


@dataclass(frozen=True)
class NewOffset:
    kg: float
    note: str
    at_ms: int


def validate_offset(body: Any, now: float) -> NewOffset:
    body = _require_object(body)
    _reject_unknown(body, ("kg", "note", "at"))
    if body.get("kg") is None:
        raise InputError("kg is required: the offset in kg CO2e, greater than 0", field="kg")
    kg = _number(body, "kg", 0.0, MAX_OFFSET_KG, low_open=True)
    note = _text(body, "note", MAX_NOTE, default="")
    at = body.get("at")
    if at is None:
        at_s = now
    else:
        if isinstance(at, bool) or not isinstance(at, (str, int, float)):
            raise InputError("at must be a time: RFC 3339, Unix seconds, or relative like -1d", field="at")
        try:
            at_s = parse_time(str(at), now)
        except ValueError as error:
            raise InputError(f"at: {error}", field="at") from None
    return NewOffset(kg=kg, note=note, at_ms=int(round(at_s * 1000)))


def parse_comparison_id(text: str) -> int | None:
    """The numeric id in a path, or None when it cannot name a comparison (answered with 404)."""
    if not is_ascii_digits(text) or len(text) > 18:
        return None
    return int(text)


@dataclass(frozen=True)
class ListQuery:
    status: str | None
    limit: int
    before: int | None


def validate_list_query(args: dict[str, list[str]]) -> ListQuery:
    values = single_values(args, ("status", "limit", "before"))
    status = values.get("status")
    if status is not None and status not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}", field="status")
    limit = DEFAULT_LIMIT
    if "limit" in values:
        if not is_ascii_digits(values["limit"]) or not 1 <= int(values["limit"]) <= MAX_LIMIT:
            raise InputError(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
        limit = int(values["limit"])
    before = None
    if "before" in values:
        before = parse_comparison_id(values["before"])
        if before is None:
            raise InputError("before must be the cursor from a previous page's next", field="before")
    return ListQuery(status=status, limit=limit, before=before)


# -- SQL --------------------------------------------------------------------------------------------
RECORD_COLUMNS = ("id, name, models, status, created_ms, started_ms, finished_ms, accuracy, speed, latency_ms, "
                  "error, metadata, energy_kwh, carbon_kg, pids, gpu_share, machine_kwh, "
                  "attributed_cpu_j, attributed_gpu_j, attributed_mem_j")


def record_from_row(row: tuple) -> dict[str, Any]:
    (id_, name, models, status, created, started, finished, accuracy, speed, latency_ms, error, metadata, energy,
     carbon, pids, gpu_share, machine_kwh, cpu_j, gpu_j, mem_j) = row
    by_component = None
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
        "energyKwh": energy,
        "carbonKg": carbon,
        "pids": list(pids) if pids is not None else None,
        "attribution": "process" if pids else "time_share",
        "gpuShare": gpu_share,
        "machineEnergyKwh": machine_kwh,
        "energyByComponentKwh": by_component,
    }


def insert_comparison(con, new: NewComparison, now_ms: int) -> dict[str, Any]:
    started = now_ms if new.status == "running" else None
    pids = list(new.pids) if new.pids else None
    row = first(con.execute(
        f"INSERT INTO comparisons (name, models, status, created_ms, started_ms, metadata, pids) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING {RECORD_COLUMNS}",
        [new.name, list(new.models), new.status, now_ms, started, new.metadata, pids]).fetchall())
    return record_from_row(row)


def fetch_comparison(con, comparison_id: int) -> dict[str, Any] | None:
    row = first(con.execute(f"SELECT {RECORD_COLUMNS} FROM comparisons WHERE id = ?", [comparison_id]).fetchall())
    return record_from_row(row) if row else None


def current_status(con, comparison_id: int) -> tuple[str, int | None, tuple[int, ...] | None] | None:
    row = first(con.execute("SELECT status, started_ms, pids FROM comparisons WHERE id = ?",
                            [comparison_id]).fetchall())
    return (row[0], row[1], tuple(row[2]) if row[2] else None) if row else None


class RunClock:
    """When comparisons started running, on the monotonic clock (writer thread): a duration is the monotonic time
    between start and finish, whatever the wall clock did meanwhile. A comparison started before a restart has
    no monotonic start: its finish is the wall clock's, never before its start."""

    def __init__(self, monotonic):
        self._monotonic = monotonic
        self._started: dict[int, float] = {}

    def started(self, comparison_id: int) -> None:
        self._started[comparison_id] = self._monotonic()

    def finished_ms(self, comparison_id: int, started_ms: int | None, now_ms: int) -> int:
        mono = self._started.pop(comparison_id, None)
        if started_ms is None:
            return now_ms
        if mono is None:
            return max(now_ms, started_ms)
        return started_ms + round((self._monotonic() - mono) * 1000.0)


@dataclass(frozen=True)
class Finish:
    """What a comparison's end records besides its status: energy (kWh after PUE), carbon (kg), how the energy
    was attributed, and for per-process attribution the machine's energy over the same run."""

    energy_kwh: float | None = None
    carbon_kg: float | None = None
    finished_ms: int | None = None
    machine_kwh: float | None = None
    attributed: Attributed | None = None


def apply_update(con, comparison_id: int, update: ComparisonUpdate, now_ms: int,
                 finish: Finish = Finish()) -> dict[str, Any]:
    started = now_ms if update.status == "running" else None
    finished = (finish.finished_ms if finish.finished_ms is not None else now_ms) \
        if update.status in FINISHED else None
    pids = list(update.pids) if update.pids else None
    row = first(con.execute(
        f"UPDATE comparisons SET status = ?, started_ms = coalesce(?, started_ms), "
        f"finished_ms = coalesce(?, finished_ms), accuracy = coalesce(?, accuracy), "
        f"speed = coalesce(?, speed), latency_ms = coalesce(?, latency_ms), error = coalesce(?, error), "
        f"energy_kwh = coalesce(?, energy_kwh), carbon_kg = coalesce(?, carbon_kg), pids = coalesce(?, pids), "
        f"machine_kwh = coalesce(?, machine_kwh), {_ATTRIBUTED_SET} WHERE id = ? RETURNING {RECORD_COLUMNS}",
        [update.status, started, finished, update.accuracy, update.speed, update.latency_ms, update.error,
         finish.energy_kwh, finish.carbon_kg, pids, finish.machine_kwh, *_attributed_values(finish.attributed),
         comparison_id]).fetchall())
    return record_from_row(row)


def finish_update(con, comparison_id: int, update: ComparisonUpdate, now_ms: int, pending, pue: float,
                  grid, run_clock: RunClock, attributor) -> dict[str, Any]:
    """Apply an update (writer thread, inside its transaction): check the transition, follow the processes a
    running comparison names, and give one that ran and now finishes its duration (monotonic), energy and carbon
    (``pending``: the sample rows not yet stored). With ``pids``, its energy is what the ``attributor`` gave
    its processes; without, the machine's energy while it ran, shared equally among the comparisons running."""
    current = current_status(con, comparison_id)
    if current is None:
        raise InputError(f"no comparison {comparison_id}", status=404)
    status, started_ms, pids = current
    check_transition(status, update.status)
    pids = update.pids or pids
    finish = Finish()
    if update.status == "running":
        run_clock.started(comparison_id)
        if pids:
            attributor.track(comparison_id, pids)
    if update.status in FINISHED:
        finished_ms = run_clock.finished_ms(comparison_id, started_ms, now_ms)
        attributed = attributor.untrack(comparison_id)
        finish = Finish(0.0, 0.0, finished_ms)
        if started_ms is not None:
            until_ms = max(now_ms, started_ms)
            if pids:
                machine_kwh, _ = energy.comparison_energy(con, pending, started_ms, until_ms,
                                                          [(comparison_id, started_ms, until_ms)], pue, grid)
                attributed = attributed or attribution_loaded(con, comparison_id)
                finish = Finish(figures.kwh(attributed.total_j * pue), attributed.carbon_kg(pue), finished_ms,
                                machine_kwh, attributed)
            else:
                energy_kwh, carbon_kg = energy.comparison_energy(
                    con, pending, started_ms, until_ms, running_intervals(con, started_ms, until_ms), pue, grid)
                finish = Finish(energy_kwh, carbon_kg, finished_ms)
    return apply_update(con, comparison_id, update, now_ms, finish)


# what a comparison named processes has been given: Attributed's fields, in its order
_ATTRIBUTED_COLUMNS = ("attributed_cpu_j", "attributed_gpu_j", "attributed_mem_j", "attributed_jg", "gpu_share")
_ATTRIBUTED_SET = ", ".join(f"{column} = coalesce(?, {column})" for column in _ATTRIBUTED_COLUMNS)


def _attributed_values(given: Attributed | None) -> tuple:
    if given is None:
        return (None,) * len(_ATTRIBUTED_COLUMNS)
    return given.cpu_j, given.gpu_j, given.mem_j, given.joule_g_per_kwh, given.gpu_method


def _attributed_of(values: tuple) -> Attributed:
    return Attributed(*(float(value or 0.0) for value in values[:4]), gpu_method=values[4])


def attribution_loaded(con, comparison_id: int) -> Attributed:
    """What was saved of a comparison's per-process attribution (after a restart)."""
    row = first(con.execute(f"SELECT {', '.join(_ATTRIBUTED_COLUMNS)} FROM comparisons WHERE id = ?",
                            [comparison_id]).fetchall())
    return _attributed_of(row) if row is not None else Attributed()


def save_attribution(con, attributed: dict[int, Attributed]) -> None:
    """Keep what running comparisons have been given so far (a restart carries on from it)."""
    for comparison_id, given in attributed.items():
        con.execute(f"UPDATE comparisons SET {_ATTRIBUTED_SET} WHERE id = ?",
                    [*_attributed_values(given), comparison_id])


def running_with_pids(con) -> dict[int, tuple[tuple[int, ...], Attributed]]:
    rows = con.execute(f"SELECT id, pids, {', '.join(_ATTRIBUTED_COLUMNS)} FROM comparisons "
                       "WHERE status = 'running' AND pids IS NOT NULL").fetchall()
    return {row[0]: (tuple(row[1]), _attributed_of(row[2:])) for row in rows}


def list_comparisons(con, query: ListQuery) -> dict[str, Any]:
    conditions, params = [], []
    if query.status is not None:
        conditions.append("status = ?")
        params.append(query.status)
    if query.before is not None:
        conditions.append("id < ?")
        params.append(query.before)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = con.execute(f"SELECT {RECORD_COLUMNS} FROM comparisons {where} ORDER BY id DESC LIMIT ?",
                       params + [query.limit + 1]).fetchall()
    items = [record_from_row(row) for row in rows[:query.limit]]
    more = len(rows) > query.limit
    return {"items": items, "next": str(items[-1]["id"]) if more and items else None}


def running_intervals(con, start_ms: int, end_ms: int) -> list[tuple[int, int, int]]:
    """(id, started, finished or end_ms) of comparisons that ran during [start_ms, end_ms]."""
    return con.execute(
        "SELECT id, started_ms, coalesce(finished_ms, ?) FROM comparisons "
        "WHERE started_ms IS NOT NULL AND started_ms <= ? AND coalesce(finished_ms, ?) >= ?",
        [end_ms, end_ms, end_ms, start_ms]).fetchall()


def comparison_stats(con) -> Comparisons:
    counts = dict(con.execute("SELECT status, count(*) FROM comparisons GROUP BY status").fetchall())
    averages = first(con.execute(
        "SELECT coalesce(avg(accuracy), 0), coalesce(avg(speed), 0) FROM comparisons "
        "WHERE status = 'completed'").fetchall())
    models = first(con.execute("SELECT count(DISTINCT model) FROM (SELECT unnest(models) AS model FROM comparisons)"
                         ).fetchall())[0]
    return Comparisons(running=counts.get("running", 0), queued=counts.get("queued", 0),
                       completed=counts.get("completed", 0), models=models, accuracy_pct=float(averages[0]),
                       speed=float(averages[1]))


class ComparisonTracker:
    """What the stats show of comparisons and offsets (writer thread). Reloaded when a build needs it after a
    write, or when the last load is older than REFRESH_MS (the activity window slides): a burst of writes costs
    one reload per build, not one per write, and nothing is held per comparison."""

    REFRESH_MS = 10_000

    def __init__(self, activity_window_s: float):
        self.window_ms = activity_window_s * 1000.0
        self.counts = Comparisons()
        self.activity = figures.comparison_activity(figures.Outcomes())
        self.offsets_kg = 0.0
        self.dirty = True
        self.loaded_ms: float | None = None

    def changed(self) -> None:
        """A write happened: reload before the next build."""
        self.dirty = True

    def refresh(self, con, now_ms: float) -> None:
        if not self.dirty and self.loaded_ms is not None and now_ms - self.loaded_ms < self.REFRESH_MS:
            return
        self.counts = comparison_stats(con)
        self.activity = figures.comparison_activity(outcomes_since(con, now_ms - self.window_ms))
        self.offsets_kg = offsets_total(con)
        self.dirty, self.loaded_ms = False, now_ms


def outcomes_since(con, since_ms: float) -> figures.Outcomes:
    """Counts of the comparisons finished after ``since_ms``."""
    row = first(con.execute(
        "SELECT count(*), count(latency_ms), coalesce(sum(latency_ms), 0), "
        "count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') "
        "FROM comparisons WHERE finished_ms > ?", [int(since_ms)]).fetchall())
    return figures.Outcomes(int(row[0]), int(row[1]), float(row[2]), int(row[3]), int(row[4]))


def insert_offset(con, offset: NewOffset, now_ms: int) -> dict[str, Any]:
    row = first(con.execute("INSERT INTO offsets (kg, note, at_ms, created_ms) VALUES (?, ?, ?, ?) "
                      "RETURNING id, kg, note, at_ms, created_ms",
                      [offset.kg, offset.note, offset.at_ms, now_ms]).fetchall())
    return offset_record(row)


def offset_record(row: tuple) -> dict[str, Any]:
    return {"id": row[0], "kg": row[1], "note": row[2], "at": rfc3339_ms(row[3]), "createdAt": rfc3339_ms(row[4])}


def list_offsets(con) -> dict[str, Any]:
    rows = con.execute("SELECT id, kg, note, at_ms, created_ms FROM offsets ORDER BY at_ms DESC, id DESC"
                       ).fetchall()
    total = sum(row[1] for row in rows)
    return {"items": [offset_record(row) for row in rows], "totalKg": total}


def offsets_total(con) -> float:
    return float(first(con.execute("SELECT coalesce(sum(kg), 0) FROM offsets").fetchall())[0])
