"""What handlers share: the JSON error body, the JSON body and query parsers, and the wait for a write's
commit."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Future
from typing import Any

from sanic import Request
from sanic.exceptions import SanicException

from tsstats.core.inputs import InputError, NonFiniteNumber, single_values
from tsstats.core.units import MIB

MAX_BODY_BYTES = MIB
NO_STORE = {"Cache-Control": "no-store"}
WRITE_TIMEOUT_S = 10.0


async def committed(write: Future, timeout_s: float = WRITE_TIMEOUT_S) -> Any:
    """Wait for a write handed to the writer thread to commit; its result, or a 503 if the writer has not
    begun it in time. A write answered with an error commits nothing: one still queued is cancelled (the writer
    skips it), and one the writer has begun is waited for, since its commit can no longer be stopped."""
    waiting = asyncio.wrap_future(write)
    done, _ = await asyncio.wait([waiting], timeout=timeout_s)
    if done:
        return waiting.result()
    if write.cancel():
        raise SanicException("the database writer did not answer in time; nothing was written", status_code=503)
    return await waiting


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def parse_json_body(request: Request) -> Any:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise InputError("the body must be JSON sent with Content-Type: application/json", status=415)
    if not request.body:
        raise InputError("the body is empty; send a JSON object")
    try:
        return json.loads(request.body, parse_constant=NonFiniteNumber)
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InputError("the body nests JSON too deeply") from None


def query_lists(request: Request) -> dict[str, list[str]]:
    """Every query parameter with all its values (Sanic's ``get`` would give only the first)."""
    return {key: list(values) for key, values in request.get_args(keep_blank_values=True).items()}


def query_values(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    return single_values(query_lists(request), allowed)
