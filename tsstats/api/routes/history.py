"""Figures over time: energy over an interval, the metrics catalog and history for charts (``add_routes``); the grid's
carbon intensity over time (``add_grid_routes``): a live feed of rows, their removal by time, and what is in force.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse, raw
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, committed, parse_json_body, query_lists, query_values
from tsstats.api.router import Router
from tsstats.api.view import ServiceView
from tsstats.core.inputs import InputError, boolean_value, time_range
from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH
from tsstats.figures.energy import report
from tsstats.figures.formulas import rounded
from tsstats.figures.grid import MAX_FEED_ROWS, GridRow, GridRowsError, parse_csv, parse_json_rows
from tsstats.figures.methods import methods_of
from tsstats.storage import history
from tsstats.storage.catalog import catalog
from tsstats.storage.sql import Connection


def energy_figures(result) -> dict[str, Any]:
    """An interval's energy by component in joules and its carbon in grams, each at its precision, with the
    deprecated kWh and kg fields beside them."""
    kwh = {"cpu": result.cpu_kwh, "gpu": result.gpu_kwh, "memory": result.memory_kwh, "total": result.total_kwh}
    return {"energyJ": {part: rounded(value * JOULES_PER_KWH) for part, value in kwh.items()},
            "carbonG": rounded(result.carbon_kg * GRAMS_PER_KG),
            "energyKwh": {part: rounded(value) for part, value in kwh.items()},  # deprecated: energyJ
            "carbonKg": rounded(result.carbon_kg)}  # deprecated: carbonG


def add_routes(router: Router, view: ServiceView) -> None:
    pue = view.settings.pue

    @router.route("/api/models", ("GET",))
    async def models(request: Request):
        values = query_values(request, ("from", "to", "fair"))
        from_ms, to_ms = time_range(values, "-30d", time.time())
        fair_only = boolean_value(values, "fair") is True  # true: leave out the runs judged unfair
        return json_response(await view.heavy_read(view.model_table, from_ms, to_ms, fair_only), headers=NO_STORE)

    @router.route("/api/energy", ("GET",))
    async def energy(request: Request):
        from_ms, to_ms = time_range(query_values(request, ("from", "to")), "-24h", time.time())
        sums = await view.heavy_read(view.energy_between, from_ms, to_ms)
        grid = view.grid
        intensity = sums.g_per_kwh(grid.g_per_kwh)  # each sample at the grid's value then
        methods = methods_of(sums.methods(), bool(view.gpus_present())) if sums.rows else view.current_methods()
        return json_response({"from": from_ms, "to": to_ms, **energy_figures(report(sums, pue, intensity)),
                              "gPerKwh": rounded(intensity),
                              "renewablePct": rounded(sums.renewable_pct(grid.renewable_pct)),
                              "samplesOutsideGrid": sums.outside, "pue": pue, "samples": sums.rows,
                              "methods": methods.as_dict()}, headers=NO_STORE)

    async def known_gpus() -> set[int]:
        """GPUs the database has rows of, and those present now."""
        return set(await view.read(history.gpu_indexes)) | view.gpus_present()

    @router.route("/api/metrics", ("GET",))
    async def metrics_catalog(request: Request):
        query_values(request, ())
        return json_response(catalog(sorted(await known_gpus())), headers=NO_STORE)

    @router.route("/api/history", ("GET",))
    async def history_route(request: Request):
        view.demand.asked()
        args = query_lists(request)
        known = None
        if "gpu" in "".join(args.get("metrics", [])):
            known = await known_gpus()
        query = history.parse_history_query(args, time.time(), known)
        tiers = view.tiers()

        def answered(con: Connection) -> HTTPResponse:  # rendered on the read thread: megabytes of JSON or CSV
            answer = history.run_history(con, query, tiers.minutes_until, tiers.hours_until,  # would hold the loop
                                         view.pending_rows())
            if query.format == "csv":
                return raw(history.to_csv(answer, query.aggregates).encode(),
                           content_type="text/csv; charset=utf-8", headers=NO_STORE)
            return json_response(answer, headers=NO_STORE)

        return await view.heavy_read(answered)


def add_grid_routes(router: Router, view: ServiceView) -> None:
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
