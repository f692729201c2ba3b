"""The page at ``/``: figures from the live stream, history charts, comparisons and energy. Served from
memory, compressed once at start-up, with ETags; no build step and nothing fetched from elsewhere (uPlot is
vendored). The page and its assets need no token: the page asks for one when the API does."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

from sanic import Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from tsstats.api.bodies import NO_STORE
from tsstats.api.router import Router
from tsstats.api.view import ServiceView
from tsstats.core.inputs import InputError

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


def add_routes(router: Router, view: ServiceView) -> None:
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
