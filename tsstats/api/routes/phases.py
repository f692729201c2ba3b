"""Phases: named windows opened and closed inside a running comparison; every write through the one write
path."""

from __future__ import annotations

import time

from sanic import Request
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, committed, parse_json_body, query_values
from tsstats.api.router import Router
from tsstats.api.view import ServiceView, record_bytes
from tsstats.comparisons import validation
from tsstats.comparisons.phases import validate_new_phase, validate_phase_end
from tsstats.core.inputs import InputError


def add_routes(router: Router, view: ServiceView) -> None:
    def now_ms() -> int:
        return int(time.time() * 1000)

    def known(comparison_id: str) -> int:
        number = validation.parse_comparison_id(comparison_id)
        if number is None:
            raise InputError(f"no comparison {comparison_id}", status=404)
        return number

    @router.route("/api/comparisons/<id:str>/phases", ("POST",))
    async def phases(request: Request, id: str):  # noqa: A002
        query_values(request, ())
        new = validate_new_phase(parse_json_body(request))
        number = known(id)
        record = await committed(view.write(lambda con: view.open_phase(con, number, new, now_ms()),
                                            record_bytes(request.body)))
        return json_response(record, status=201, headers=NO_STORE)

    @router.route("/api/comparisons/<id:str>/phases/<phase:str>", ("PATCH",))
    async def phase(request: Request, id: str, phase: str):  # noqa: A002
        query_values(request, ())
        end = validate_phase_end(parse_json_body(request))
        number, phase_id = known(id), validation.parse_comparison_id(phase)
        if phase_id is None:
            raise InputError(f"no phase {phase} in comparison {id}", status=404)
        record = await committed(view.write(lambda con: view.close_phase(con, number, phase_id, end, now_ms())))
        return json_response(record, headers=NO_STORE)
