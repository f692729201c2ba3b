"""The grid's carbon intensity over time: a live feed of rows, and what is in force."""

from __future__ import annotations

from sanic import Request
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, committed, parse_json_body, query_values
from tsstats.api.router import Router
from tsstats.api.view import ServiceView
from tsstats.core.inputs import InputError
from tsstats.figures.grid_rows import GridRowsError, parse_csv, parse_json_rows


def add_routes(router: Router, view: ServiceView) -> None:
    def grid_answer() -> dict:
        return {"yearlyAverage": view.grid.average.meta(), "overTime": view.grid.series.meta()
                if view.grid.series is not None else None}

    @router.route("/api/grid", ("GET", "POST"))
    async def grid(request: Request):
        query_values(request, ())
        if request.method == "GET":
            return json_response(grid_answer(), headers=NO_STORE)
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        try:
            if content_type == "text/csv":
                try:
                    text = request.body.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputError("the CSV body is not UTF-8 text") from None
                rows = parse_csv(text, "body")
            else:
                rows = parse_json_rows(parse_json_body(request))
        except GridRowsError as error:
            raise InputError(str(error), field="rows") from None
        await committed(view.feed_grid(rows))
        return json_response(grid_answer(), headers=NO_STORE)
