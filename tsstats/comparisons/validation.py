"""Comparison request bodies and queries, checked: pure functions that raise ``InputError`` naming the field,
and the states a comparison may move between."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tsstats.core.inputs import (
    InputError,
    NonFiniteNumber,
    boolean_value,
    check_text,
    is_ascii_digits,
    number_field,
    reject_unknown,
    require_object,
    single_values,
    text_field,
    whole_number,
    whole_number_text,
)

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
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_PAGE_BYTES = 1024 * 1024  # a page of a list ends before its items' JSON passes this (one item at least)
MAX_ITEMS = 1e15
MIN_ITEMS = 1e-6  # a millionth of an item: per-item figures stay finite numbers
UNNAMED = "unnamed run"
MAX_PIDS = 256
MAX_PID = 2 ** 22  # Linux's pid_max limit


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
    numbers = []
    for pid in pids:
        number = whole_number(pid)
        if number is None or not 1 <= number <= MAX_PID:
            raise InputError(f"each pid must be a positive integer up to {MAX_PID}, not {jsontext_field(pid)}",
                             field="pids")
        numbers.append(number)
    return tuple(dict.fromkeys(numbers))


def jsontext_field(value: Any) -> str:
    text = repr(value) if isinstance(value, NonFiniteNumber) else json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class NewComparison:
    name: str
    models: tuple[str, ...]
    status: str
    metadata: str
    pids: tuple[int, ...] | None = None
    items: float | None = None


def validate_new_comparison(body: Any) -> NewComparison:
    body = require_object(body)
    reject_unknown(body, ("models", "name", "status", "metadata", "pids", "items"))
    models = body.get("models")
    if models is None:
        models = []  # a tracked run need name no model (`tsstats run -- make`)
    if not isinstance(models, list):
        raise InputError("models must be a list of model names", field="models")
    if len(models) > MAX_MODELS:
        raise InputError(f"models must hold at most {MAX_MODELS} names, not {len(models)}", field="models")
    for model in models:
        if not isinstance(model, str) or not 1 <= len(model) <= MAX_MODEL_NAME:
            raise InputError(f"each model name must be a string of 1 to {MAX_MODEL_NAME} characters",
                             field="models")
        check_text(model, "models")
    name = text_field(body, "name", MAX_NAME)
    if name is None:
        name = " vs ".join(models)[:MAX_NAME] or UNNAMED
    status = body.get("status")
    if status is None:
        status = "queued"
    if status not in CREATE_STATUSES:
        raise InputError(f"status must be one of {', '.join(CREATE_STATUSES)}", field="status")
    encoded = validate_metadata(body) or "{}"
    return NewComparison(name=name, models=tuple(models), status=status, metadata=encoded, pids=validate_pids(body),
                         items=number_field(body, "items", MIN_ITEMS, MAX_ITEMS))


def validate_metadata(body: dict[str, Any]) -> str | None:
    """``metadata``: a JSON object of at most 16 KiB, as the stored text; None when not given."""
    metadata = body.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InputError("metadata must be a JSON object", field="metadata")
    try:
        encoded = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
    except TypeError:  # a NaN or Infinity inside
        raise InputError("metadata must hold only finite numbers", field="metadata") from None
    check_text(encoded, "metadata")
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InputError(f"metadata must be at most {MAX_METADATA_BYTES} bytes as JSON", field="metadata")
    return encoded


@dataclass(frozen=True)
class ComparisonUpdate:
    status: str
    accuracy: float | None
    speed: float | None
    latency_ms: float | None
    error: str | None
    pids: tuple[int, ...] | None = None
    items: float | None = None
    metadata: str | None = None  # replaces the metadata when given


def validate_update(body: Any) -> ComparisonUpdate:
    body = require_object(body)
    reject_unknown(body, ("status", "accuracy", "speed", "latencyMs", "error", "pids", "items", "metadata"))
    status = body.get("status")
    if status is None:
        raise InputError("status is required", field="status")
    if status not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}", field="status")
    latency_ms = number_field(body, "latencyMs", 0.0, MAX_LATENCY_MS)
    if latency_ms is not None and status not in FINISHED:
        raise InputError(f"latencyMs is reported with a final status ({', '.join(FINISHED)}), not {status}",
                         field="latencyMs")
    return ComparisonUpdate(
        status=status,
        accuracy=number_field(body, "accuracy", 0.0, 100.0),
        speed=number_field(body, "speed", 0.0, MAX_SPEED),
        latency_ms=latency_ms,
        error=text_field(body, "error", MAX_ERROR),
        pids=validate_pids(body),
        items=number_field(body, "items", MIN_ITEMS, MAX_ITEMS),
        metadata=validate_metadata(body),
    )


def check_transition(current: str, wanted: str, ended_by: str | None = None) -> None:
    """Refuse (409) a move the states do not allow; a final status the service gave on its own (``ended_by``
    'service': the run's processes exited and nobody reported) gives way to the client's final status."""
    if ended_by == "service" and current in FINISHED and wanted in FINISHED:
        return
    if wanted not in TRANSITIONS.get(current, ()):
        allowed = TRANSITIONS.get(current)
        hint = f"allowed from {current}: {', '.join(allowed)}" if allowed else f"{current} is final"
        raise InputError(f"a {current} comparison cannot become {wanted}; {hint}", field="status", status=409)



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
    fair: bool | None = None
    model: str | None = None


def validate_list_query(args: dict[str, list[str]],
                        allowed: tuple[str, ...] = ("status", "limit", "before", "fair", "model")) -> ListQuery:
    """A page of a list: ``limit`` (1 to 500, default 50), ``before`` (the previous page's ``next``) and, for
    comparisons, ``status``, ``fair`` (``true``: the finished runs judged fair; ``false``: those judged unfair)
    and ``model`` (the comparisons naming it)."""
    values = single_values(args, allowed)
    model = values.get("model")
    if model is not None:
        if not 1 <= len(model) <= MAX_MODEL_NAME:
            raise InputError(f"model must be a model name of 1 to {MAX_MODEL_NAME} characters", field="model")
        check_text(model, "model")
    status = values.get("status")
    if status is not None and status not in STATUSES:
        raise InputError(f"status must be one of {', '.join(STATUSES)}", field="status")
    limit = DEFAULT_LIMIT
    if "limit" in values:
        given = whole_number_text(values["limit"])
        if given is None or not 1 <= given <= MAX_LIMIT:
            raise InputError(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
        limit = given
    before = None
    if "before" in values:
        before = parse_comparison_id(values["before"])
        if before is None:
            raise InputError("before must be the cursor from a previous page's next", field="before")
    return ListQuery(status=status, limit=limit, before=before, fair=boolean_value(values, "fair"), model=model)


def page_answer(items: list[dict[str, Any]], fetched: int) -> dict[str, Any]:
    """``{"items", "next"}`` of a page: ``items`` (at most ``limit``, of the ``limit + 1`` rows asked for, of which
    ``fetched`` came), cut before their JSON passes ``MAX_PAGE_BYTES`` (the first item always); ``next`` is the
    cursor of what follows, or None at the end."""
    size, kept = 0, items
    for count, item in enumerate(items):
        size += len(json.dumps(item)) + 1
        if size > MAX_PAGE_BYTES and count:
            kept = items[:count]
            break
    return {"items": kept, "next": str(kept[-1]["id"]) if fetched > len(kept) and kept else None}
