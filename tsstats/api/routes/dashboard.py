"""The dashboard's stats and their live stream."""

from __future__ import annotations

import asyncio
import time

from sanic import Request
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, error_body
from tsstats.api.router import SECURITY_HEADERS, PreparedResponse, Router, prepare_headers
from tsstats.api.view import ServiceView
from tsstats.sampling.publishing import Snapshot

STREAM_HEARTBEAT_S = 15.0
BUILD_WAIT_S = 1.0  # how long a request waits for stats a write changed before it gets the previous ones
AGE_WAIT_S = 0.04  # how long it waits for stats that are merely due by age (the writer may be busy)


def snapshot_source(view: ServiceView):
    """``(rebuilt, current)``: coroutines giving stats no older than update_interval, built on demand."""

    async def rebuilt() -> Snapshot | None:
        """Stats built afresh by the writer thread (one build for all who ask at once); the previous ones if it
        is busy for longer than BUILD_WAIT_S after a write changed them, or AGE_WAIT_S when they are only due by
        age (their generatedAt says how old they are): a busy writer costs the poller freshness, not time."""
        wait_s = BUILD_WAIT_S if view.snapshot_expires == 0.0 or view.snapshot is None else AGE_WAIT_S
        building = asyncio.wrap_future(view.request_snapshot())
        try:
            return await asyncio.wait_for(asyncio.shield(building), wait_s)
        except TimeoutError:
            return view.snapshot

    async def current() -> Snapshot | None:
        snapshot = view.snapshot
        if snapshot is None or view.monotonic() >= view.snapshot_expires:
            return await rebuilt()
        return snapshot

    return rebuilt, current


STATS_HEADERS = prepare_headers({"content-type": "application/json", **NO_STORE, **SECURITY_HEADERS})


def add_routes(router: Router, view: ServiceView) -> None:
    rebuilt, current_snapshot = snapshot_source(view)
    monotonic = view.monotonic
    update_interval = view.settings.update_interval

    @router.route("/api/dashboard/stats", ("GET",))
    async def stats(request: Request):
        snapshot = view.snapshot
        if snapshot is None or monotonic() >= view.snapshot_expires:  # current_snapshot(), inlined: hot path
            snapshot = await rebuilt()
        if snapshot is None:
            return json_response(error_body(503, "the first samples are not in yet; retry in a second"),
                                 status=503, headers={**NO_STORE, "Retry-After": "1"})
        return PreparedResponse(snapshot.body, STATS_HEADERS)

    @router.route("/api/dashboard/stream", ("GET",), accounted=False)
    async def stream(request: Request):
        headers = {**NO_STORE, "X-Accel-Buffering": "no", **router.answer_headers(request)}
        response = await request.respond(content_type="text/event-stream", headers=headers)
        last_version = None
        last_sent = time.monotonic()
        while True:
            snapshot = await current_snapshot()
            now = time.monotonic()
            if snapshot is not None and snapshot.version != last_version:
                last_version = snapshot.version
                await response.send(b"event: stats\ndata: " + snapshot.body + b"\n\n")
                last_sent = now
            elif now - last_sent >= STREAM_HEARTBEAT_S:
                await response.send(b": heartbeat\n\n")
                last_sent = now
            await asyncio.sleep(update_interval)
