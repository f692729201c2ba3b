"""Operations: the Prometheus exposition and health."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sanic import Request
from sanic.response import json as json_response
from sanic.response import raw

from tsstats.api.bodies import NO_STORE
from tsstats.api.openapi import openapi_document
from tsstats.api.prometheus import CONTENT_TYPE, render_metrics
from tsstats.api.router import Router
from tsstats.api.routes.dashboard import snapshot_source
from tsstats.api.view import ServiceView
from tsstats.comparisons.models import model_series
from tsstats.sampling.publishing import FAILED_BUILDS_UNHEALTHY
from tsstats.sampling.sampler import HOLD_S
from tsstats.storage.reads import database_memory


def add_routes(router: Router, view: ServiceView) -> None:
    _, current_snapshot = snapshot_source(view)
    document = openapi_document(token_set=router.token is not None)
    max_models = view.settings.metrics_max_models

    @router.route("/openapi.json", ("GET",))
    async def openapi(request: Request):
        return json_response(document)

    @router.route("/metrics", ("GET",))
    async def metrics(request: Request):
        snapshot = await current_snapshot()
        if snapshot is None:
            return raw(b"", content_type=CONTENT_TYPE, status=503, headers=NO_STORE)
        models, memory = await view.read(lambda con: (model_series(con, max_models), database_memory(con)))
        scrape = replace(view.scrape(snapshot), models=models, database_memory=memory)
        body = await asyncio.get_running_loop().run_in_executor(None, render_metrics, scrape)  # off the loop
        return raw(body, content_type=CONTENT_TYPE, headers=NO_STORE)

    @router.route("/healthz", ("GET",), public=True)
    async def healthz(request: Request):
        health = view.health()
        problems = []
        if health.stalled:
            problems.append("the sampler has not sampled for more than 5 s")
        if health.snapshot is None:
            problems.append("the first stats are not ready yet")
        if health.build_failures >= FAILED_BUILDS_UNHEALTHY:
            problems.append(f"building the stats has failed {health.build_failures} times in a row "
                            f"({health.build_error}); the stats served are "
                            f"{round(health.snapshot_age_s or 0.0)} s old")
        if not health.writable:
            problems.append(f"the database cannot be written: {health.last_error}; {health.samples_held} samples "
                            f"are held in memory (up to {HOLD_S:g} s of them) and written once it can")
        age = None if health.last_sample_age_s is None else round(health.last_sample_age_s, 3)
        body = {
            "status": "ok" if not problems else "unhealthy",
            "lastSampleAgeS": age,
            "database": {"path": health.database_path, "writable": health.writable,
                         "lastError": health.last_error or None, "flushes": health.flushes,
                         "reopens": health.reopens},
            "samplesHeld": health.samples_held,
            "samplesLost": health.samples_lost,
            "stats": None if health.snapshot is None else {
                "builds": health.snapshot.version, "ageS": round(health.snapshot_age_s or 0.0, 3),
                "failedBuilds": health.build_failures, "lastError": health.build_error or None},
            "problems": problems,
        }
        if not router.authorized(request):  # with a token set, a caller without it learns up or down, no more
            body = {"status": body["status"]}
        return json_response(body, status=200 if not problems else 503, headers=NO_STORE)
