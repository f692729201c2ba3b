"""Studies: the comparisons whose metadata names a study, listed, one study's figures from its stored trials, and
its deletion (every trial of it, through the one write path)."""

from __future__ import annotations

import time

from sanic import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, committed, query_values
from tsstats.api.router import Router
from tsstats.api.view import ServiceView
from tsstats.comparisons.studies import check_study_id, list_studies, study_answer, study_trial_ids
from tsstats.core.inputs import InputError


def add_routes(router: Router, view: ServiceView) -> None:
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
                now_ms = int(time.time() * 1000)
                return sum(view.delete_comparison(con, trial, now_ms) for trial in study_trial_ids(con, study_id))

            if not await committed(view.write(delete)):
                raise InputError(f"no study {study_id!r}", status=404)
            return HTTPResponse(status=204, headers=NO_STORE)
        found = await view.heavy_read(study_answer, study_id)
        if found is None:
            raise InputError(f"no study {study_id!r}", status=404)
        return json_response(found, headers=NO_STORE)
