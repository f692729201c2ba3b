"""The grid's carbon intensity over time: a live feed of rows, their removal by time, and what is in force."""

from __future__ import annotations

import asyncio
import time

from sanic import Request
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, committed, parse_json_body, query_values
from tsstats.api.router import Router
from tsstats.api.view import ServiceView
from tsstats.core.inputs import InputError, time_range
from tsstats.figures.grid import MAX_FEED_ROWS, GridRow, GridRowsError, parse_csv, parse_json_rows


def add_routes(router: Router, view: ServiceView) -> None:
    def grid_answer() -> dict:
        return {"yearlyAverage": view.grid.average.meta(), "overTime": view.grid.series.meta()
                if view.grid.series is not None else None}

    @router.route("/api/grid", ("GET", "POST", "DELETE"))
    async def grid(request: Request):
        if request.method == "DELETE":
            values = query_values(request, ("from", "to"))
            for key in ("from", "to"):
                if key not in values:
                    raise InputError(f"{key} is required: the rows that start from 'from' up to 'to' are removed",
                                     field=key)
            from_ms, to_ms = time_range(values, "now", time.time())
            removal = await committed(view.remove_grid_rows(from_ms, to_ms))
            return json_response({"removed": removal.removed, **grid_answer()}, headers=NO_STORE)
        query_values(request, ())
        if request.method == "GET":
            return json_response(grid_answer(), headers=NO_STORE)
        rows = await asyncio.get_running_loop().run_in_executor(None, parsed_rows, request)
        await committed(view.feed_grid(rows))
        return json_response(grid_answer(), headers=NO_STORE)


def parsed_rows(request: Request) -> list[GridRow]:
    """A feed's rows from its JSON or CSV body (off the event loop: 10,000 rows take a while), at most
    ``MAX_FEED_ROWS`` in either format."""
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    try:
        if content_type == "text/csv":
            try:
                text = request.body.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("the CSV body is not UTF-8 text") from None
            return parse_csv(text, "body", max_rows=MAX_FEED_ROWS)
        return parse_json_rows(parse_json_body(request))
    except GridRowsError as error:
        raise InputError(str(error), field="rows") from None
