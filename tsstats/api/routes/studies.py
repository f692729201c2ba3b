"""Studies: the comparisons whose metadata names a study, listed, one study's figures from its stored trials, and
its deletion (every trial of it, through the one write path); and whether the machine is quiet and cool now,
what a study waits on before each trial."""

from __future__ import annotations

import math
import time
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, committed, error_body, query_values
from tsstats.api.router import Router
from tsstats.api.view import ServiceView
from tsstats.comparisons.studies import check_study_id, list_studies, study_answer, study_trial_ids
from tsstats.core.inputs import InputError, rfc3339_ms
from tsstats.core.units import MS_PER_S
from tsstats.figures.formulas import finite_or_none
from tsstats.sampling.reading import MachineNow


def machine_now_body(now: MachineNow, limit_pct: float) -> dict[str, Any]:
    figures = {"cpuPct": now.cpu_pct, "contentionPct": now.others_pct, "serviceCpuPct": now.service_pct,
               "cpuTemperatureC": now.cpu_temperature_c}
    return {"takenAt": rfc3339_ms(now.taken_ms), "takenAtMs": int(now.taken_ms), "windowS": round(now.seconds, 3),
            **{name: finite_or_none(value, 2) for name, value in figures.items()},
            "gpuTemperatureC": {str(index): finite_or_none(value, 2)
                                for index, value in sorted(now.gpu_temperature_c.items())},
            "quiet": not now.others_pct > limit_pct, "limits": {"contentionPct": limit_pct},  # unknown: quiet
            "unavailable": [name for name, value in figures.items() if not math.isfinite(value)]}


def add_routes(router: Router, view: ServiceView) -> None:
    limit_pct = view.settings.contention_limit_pct

    @router.route("/api/conditions", ("GET",))
    async def conditions(request: Request):
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
