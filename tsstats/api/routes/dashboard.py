"""What the dashboard and the page read: the stats and their live stream (``add_routes``), and the page at ``/``
(``add_page_routes``): figures from the live stream, history charts, comparisons and energy. Served from memory,
compressed once at start-up, with ETags; no build step and nothing fetched from elsewhere (uPlot is vendored). The
page and its assets need no token: the page asks for one when the API does.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from dataclasses import dataclass
from importlib import resources

from sanic import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE, error_body
from tsstats.api.router import SECURITY_HEADERS, PreparedResponse, Router, prepare_headers
from tsstats.api.view import ServiceView
from tsstats.core.inputs import InputError
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
    asked = view.demand.asked

    @router.route("/api/dashboard/stats", ("GET",))
    async def stats(request: Request):
        asked()
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
        view.demand.stream_opened()
        try:
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
        finally:
            view.demand.stream_closed()


ASSETS = {  # served name -> (file under tsstats/api/web, content type)
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "app.css": ("app.css", "text/css; charset=utf-8"),
    "uPlot.iife.min.js": ("vendor/uplot/uPlot.iife.min.js", "text/javascript; charset=utf-8"),
    "uPlot.min.css": ("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
    "uPlot-LICENSE.txt": ("vendor/uplot/LICENSE", "text/plain; charset=utf-8"),
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    etag: str
    content_type: str


def load_assets() -> dict[str, Asset]:
    web = resources.files("tsstats.api").joinpath("web")
    assets = {}
    for name, (path, content_type) in ASSETS.items():
        body = web.joinpath(path).read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[name] = Asset(body, gzip.compress(body, 9, mtime=0), etag, content_type)
    return assets


def asset_response(request: Request, asset: Asset) -> HTTPResponse:
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if asset.etag in (request.headers.get("if-none-match") or ""):
        return HTTPResponse(status=304, headers=headers)
    if "gzip" in (request.headers.get("accept-encoding") or ""):
        return HTTPResponse(asset.gzipped, headers={**headers, "Content-Encoding": "gzip"},
                            content_type=asset.content_type)
    return HTTPResponse(asset.body, headers=headers, content_type=asset.content_type)


def add_page_routes(router: Router, view: ServiceView) -> None:
    assets = load_assets()

    @router.route("/", ("GET",), public=True)
    async def page(request: Request):
        return asset_response(request, assets["index.html"])

    @router.route("/assets/<name:str>", ("GET",), public=True)
    async def asset(request: Request, name: str):
        if name not in assets or name == "index.html":
            raise InputError(f"no asset {name}", status=404)
        return asset_response(request, assets[name])

    @router.route("/api/check", ("GET",))
    async def check(request: Request):
        return json_response(view.check(), headers=NO_STORE)
