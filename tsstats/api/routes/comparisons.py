"""Comparisons and offsets: created, updated and listed; and their phases, named windows opened and closed inside a
running comparison. Every write through the one write path; handlers on the event loop.

Studies (``add_study_routes``): the comparisons whose metadata names a study, listed, one study's figures from its
stored trials, and its deletion (every trial of it, through the one write path); and whether the machine is quiet
and cool now, what a study waits on before each trial.
"""

from __future__ import annotations

import math
import time
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, committed, error_body, parse_json_body, query_lists, query_values
from tsstats.api.router import Router
from tsstats.api.view import ServiceView, record_bytes
from tsstats.comparisons import records, validation
from tsstats.comparisons.phases import validate_new_phase, validate_phase_end
from tsstats.comparisons.records import list_offsets, validate_offset
from tsstats.comparisons.studies import check_study_id, list_studies, study_answer, study_trial_ids
from tsstats.core.inputs import InputError, rfc3339_ms
from tsstats.core.units import MS_PER_S
from tsstats.figures.formulas import finite_or_none
from tsstats.sampling.reading import MachineNow


def add_routes(router: Router, view: ServiceView) -> None:
    async def write(work, request: Request | None = None):
        """Hand ``work(connection)`` to the writer thread and wait for its commit; ``request``: a write that adds
        a record (its body's size counts against the records' room)."""
        return await committed(view.write(work, record_bytes(request.body) if request is not None else 0))

    def now_ms() -> int:
        return int(time.time() * MS_PER_S)

    def check_processes(pids: tuple[int, ...] | None) -> None:
        missing = [pid for pid in pids or () if not view.process_exists(pid)]
        if missing:
            listed = ", ".join(str(pid) for pid in missing[:10]) + (", ..." if len(missing) > 10 else "")
            raise InputError(f"no running process {listed} on this machine: pids names processes that exist",
                             field="pids")

    @router.route("/api/comparisons", ("GET", "POST"))
    async def comparisons(request: Request):
        if request.method == "POST":
            query_values(request, ())  # a write takes no query parameters: an unknown one is a 400
            new = validation.validate_new_comparison(parse_json_body(request))
            check_processes(new.pids)
            record = await write(lambda con: view.create_comparison(con, new, now_ms()), request)
            return json_response(record, status=201, headers=NO_STORE)
        query = validation.validate_list_query(query_lists(request))
        return json_response(await view.read(records.list_comparisons, query), headers=NO_STORE)

    @router.route("/api/comparisons/<id:str>", ("GET", "PATCH", "DELETE"))
    async def comparison(request: Request, id: str):  # noqa: A002 (the path's own name)
        comparison_id = id
        number = validation.parse_comparison_id(comparison_id)
        if request.method == "DELETE":
            query_values(request, ())
            if number is None or not await write(lambda con: view.delete_comparison(con, number, now_ms())):
                raise InputError(f"no comparison {comparison_id}", status=404)
            return HTTPResponse(status=204, headers=NO_STORE)
        if request.method == "PATCH":
            query_values(request, ())
            update = validation.validate_update(parse_json_body(request))
            if number is None:
                raise InputError(f"no comparison {comparison_id}", status=404)
            check_processes(update.pids)
            record = await write(lambda con: view.update_comparison(con, number, update, now_ms()), request)
            return json_response(record, headers=NO_STORE)
        record = await view.read(records.fetch_comparison, number) if number is not None else None
        if record is None:
            raise InputError(f"no comparison {comparison_id}", status=404)
        return json_response(record, headers=NO_STORE)

    @router.route("/api/offsets", ("GET", "POST"))
    async def offsets(request: Request):
        if request.method == "POST":
            query_values(request, ())
            offset = validate_offset(parse_json_body(request), time.time())
            record = await write(lambda con: view.add_offset(con, offset, now_ms()), request)
            return json_response(record, status=201, headers=NO_STORE)
        page = validation.validate_list_query(query_lists(request), ("limit", "before"))
        return json_response(await view.read(list_offsets, page), headers=NO_STORE)


def add_phase_routes(router: Router, view: ServiceView) -> None:
    def now_ms() -> int:
        return int(time.time() * MS_PER_S)

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


def machine_now_body(now: MachineNow, limit_pct: float) -> dict[str, Any]:
    figures = {"cpuPct": now.cpu_pct, "contentionPct": now.others_pct, "serviceCpuPct": now.service_pct,
               "cpuTemperatureC": now.cpu_temperature_c}
    return {"takenAt": rfc3339_ms(now.taken_ms), "takenAtMs": int(now.taken_ms), "windowS": round(now.seconds, 3),
            **{name: finite_or_none(value, 2) for name, value in figures.items()},
            "gpuTemperatureC": {str(index): finite_or_none(value, 2)
                                for index, value in sorted(now.gpu_temperature_c.items())},
            "quiet": not now.others_pct > limit_pct, "limits": {"contentionPct": limit_pct},  # unknown: quiet
            "unavailable": [name for name, value in figures.items() if not math.isfinite(value)]}


def add_study_routes(router: Router, view: ServiceView) -> None:
    limit_pct = view.settings.contention_limit_pct

    @router.route("/api/conditions", ("GET",))
    async def conditions(request: Request):
        view.demand.asked()
        query_values(request, ())
        now = view.machine_now()
        if now is None:
            return json_response(error_body(503, "the first half second is not read yet; retry in a second"),
                                 status=503, headers={**NO_STORE, "Retry-After": "1"})
        return json_response(machine_now_body(now, limit_pct), headers=NO_STORE)

    @router.route("/api/studies", ("GET",))
    async def studies(request: Request):
        query_values(request, ())
        return json_response(await view.heavy_read(list_studies), headers=NO_STORE)  # a scan of every comparison

    @router.route("/api/studies/<id:str>", ("GET", "DELETE"))
    async def study(request: Request, id: str):  # noqa: A002 (the path's own name)
        query_values(request, ())
        study_id = check_study_id(id)
        if request.method == "DELETE":
            def delete(con) -> int:
                now_ms = int(time.time() * MS_PER_S)
                return sum(view.delete_comparison(con, trial, now_ms) for trial in study_trial_ids(con, study_id))

            if not await committed(view.write(delete)):
                raise InputError(f"no study {study_id!r}", status=404)
            return HTTPResponse(status=204, headers=NO_STORE)
        found = await view.heavy_read(study_answer, study_id)
        if found is None:
            raise InputError(f"no study {study_id!r}", status=404)
        return json_response(found, headers=NO_STORE)
