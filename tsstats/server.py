"""The Sanic application: routes, JSON errors, bearer token, CORS, request accounting."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from time import perf_counter
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import MethodNotAllowed, NotFound, SanicException
from sanic.response import HTTPResponse, raw
from sanic.response import json as json_response

from . import comparisons as cmp
from . import history
from .catalog import catalog
from .exposition import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .exposition import render_metrics
from .figures import carbon_kg, kwh
from .meter import current_methods, methods_of
from .params import InputError, NonFiniteNumber, single_values, time_range

log = logging.getLogger("tsstats.server")
MAX_BODY_BYTES = 1024 * 1024
WRITE_TIMEOUT_S = 10.0
STREAM_HEARTBEAT_S = 15.0
BUILD_WAIT_S = 1.0  # how long a request waits for fresh stats before it is answered with the previous ones
NO_STORE = {"Cache-Control": "no-store"}


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def parse_json_body(request: Request) -> Any:
    content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise InputError("the body must be JSON sent with Content-Type: application/json", status=415)
    if not request.body:
        raise InputError("the body is empty; send a JSON object")
    try:
        return json.loads(request.body, parse_constant=NonFiniteNumber)
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InputError("the body nests JSON too deeply") from None


def query_lists(request: Request) -> dict[str, list[str]]:
    """Every query parameter with all its values (Sanic's ``get`` would give only the first)."""
    return {key: list(values) for key, values in request.get_args(keep_blank_values=True).items()}


def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    return single_values(query_lists(request), allowed)


def create_app(settings, store, sampler, requests, *, name: str = "tsstats") -> Sanic:
    """The application over a started store and sampler (both owned by the caller)."""
    app = Sanic(name)
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.KEEP_ALIVE_TIMEOUT = 75
    app.config.MOTD = False
    origins = set(settings.cors_origins)
    account = requests.record
    token = settings.token.encode() if settings.token else None

    async def write(work):
        """Hand ``work(connection)`` to the sampler thread, the only writer, and wait for its commit."""
        future = sampler.submit(work)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), WRITE_TIMEOUT_S)
        except TimeoutError:
            raise SanicException("the database writer did not answer in time", status_code=503) from None

    def error_response(request: Request, error: Exception) -> HTTPResponse:
        """The JSON error for any exception, from a handler or from Sanic's routing and body limits."""
        headers: dict[str, str] = {}
        field = None
        if isinstance(error, InputError):
            status, message, field = error.status, error.message, error.field
        elif isinstance(error, NotFound):
            status, message = 404, f"no route {request.method} {request.path}"
        elif isinstance(error, MethodNotAllowed):
            allowed = sorted(getattr(error, "allowed_methods", None) or [])
            status, message = 405, f"{request.method} is not allowed on {request.path}"
            if allowed:
                headers["Allow"] = ", ".join(allowed)
                message += f"; allowed: {', '.join(allowed)}"
        elif isinstance(error, SanicException):
            status = getattr(error, "status_code", 500) or 500
            if status == 413:
                message = f"the body is larger than {MAX_BODY_BYTES} bytes"
            else:
                message = str(error) or ("internal error" if status >= 500 else "bad request")
            if status >= 500:
                log.error("%s %s failed: %s", request.method, request.path, error)
        else:
            log.error("%s %s failed", request.method, request.path, exc_info=error)
            status, message = 500, "internal error; see the server log"
        return json_response(error_body(status, message, field), status=status, headers=headers)

    def cors_headers(request: Request) -> dict[str, str]:
        """The CORS headers of an answer to an allowed origin (none for other origins)."""
        origin = request.headers.get("origin")
        if origin is not None and origin in origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def allow_origin(request: Request, response: HTTPResponse) -> None:
        response.headers.update(cors_headers(request))

    def authorized(request: Request) -> bool:
        supplied = request.headers.get("authorization") or ""
        scheme, _, value = supplied.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)

    def route(path: str, methods: tuple[str, ...], *, public: bool = False, accounted: bool = True):
        """Register a handler with preflight, the token, CORS, JSON errors and request accounting around
        it (a wrapper costs less per request than Sanic middleware)."""
        accounted = accounted and path.startswith("/api/")
        guarded = token is not None and not public

        def register(handler):
            async def wrapped(request: Request, **kwargs):
                started = perf_counter()
                if request.method == "OPTIONS":
                    return preflight(request)
                if guarded and not authorized(request):
                    response = json_response(error_body(401, "missing or wrong bearer token"), status=401,
                                             headers={"WWW-Authenticate": 'Bearer realm="tsstats"'})
                else:
                    try:
                        response = await handler(request, **kwargs)
                    except Exception as error:
                        response = error_response(request, error)
                if response is not None:  # None: a stream that answered by itself
                    allow_origin(request, response)
                    if accounted:
                        finished = perf_counter()
                        account(finished - started, response.status, finished)
                return response

            wrapped.__name__ = handler.__name__
            app.route(path, methods=list(methods) + ["OPTIONS"], name=handler.__name__)(wrapped)
            return handler

        return register

    def preflight(request: Request) -> HTTPResponse:
        methods = sorted(set(request.route.methods) | {"OPTIONS"}) if request.route else ["OPTIONS"]
        headers = {"Allow": ", ".join(methods)}
        cors = cors_headers(request)
        if cors:
            headers.update(cors, **{"Access-Control-Allow-Methods": ", ".join(methods),
                                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                                    "Access-Control-Max-Age": "600"})
        return HTTPResponse(status=204, headers=headers)

    @app.exception(Exception)
    async def outside_handlers(request: Request, error: Exception):
        """Errors Sanic raises before a handler runs: unknown route, wrong method, body too large."""
        response = error_response(request, error)
        allow_origin(request, response)
        started = getattr(getattr(request, "stream", None), "perft0", None)
        if request.path.startswith("/api/"):
            account(perf_counter() - started if started else 0.0, response.status)
        return response

    monotonic = sampler.clocks.monotonic

    async def rebuilt_snapshot():
        """Stats built afresh on the sampler thread (one build for all who ask at once); the previous ones if
        the sampler is busy for longer than BUILD_WAIT_S (their generatedAt says how old they are)."""
        building = asyncio.wrap_future(sampler.fresh_snapshot())
        try:
            return await asyncio.wait_for(asyncio.shield(building), BUILD_WAIT_S)
        except TimeoutError:
            return sampler.snapshot

    async def current_snapshot():
        """The stats, no older than update_interval: built on demand, so nobody asking means no work."""
        snapshot = sampler.snapshot
        if snapshot is None or monotonic() >= sampler.snapshot_expires:
            return await rebuilt_snapshot()
        return snapshot

    # -- dashboard ----------------------------------------------------------------------------------
    @route("/api/dashboard/stats", ("GET",))
    async def stats(request: Request):
        snapshot = sampler.snapshot
        if snapshot is None or monotonic() >= sampler.snapshot_expires:  # current_snapshot(), inlined: hot path
            snapshot = await rebuilt_snapshot()
        if snapshot is None:
            return json_response(error_body(503, "the first samples are not in yet; retry in a second"),
                                 status=503, headers={**NO_STORE, "Retry-After": "1"})
        return raw(snapshot.body, content_type="application/json", headers=NO_STORE)

    @route("/api/dashboard/stream", ("GET",), accounted=False)
    async def stream(request: Request):
        headers = {**NO_STORE, "X-Accel-Buffering": "no", **cors_headers(request)}
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
            await asyncio.sleep(settings.update_interval)

    # -- comparisons --------------------------------------------------------------------------------
    @route("/api/comparisons", ("GET", "POST"))
    async def comparisons(request: Request):
        if request.method == "POST":
            new = cmp.validate_new_comparison(parse_json_body(request))
            record = await write(lambda con: store.transaction(
                lambda c: cmp.insert_comparison(c, new, int(time.time() * 1000))))
            return json_response(record, status=201, headers=NO_STORE)
        query = cmp.validate_list_query(query_lists(request))
        return json_response(await store.read(cmp.list_comparisons, query), headers=NO_STORE)

    @route("/api/comparisons/<comparison_id:str>", ("GET", "PATCH"))
    async def comparison(request: Request, comparison_id: str):
        number = cmp.parse_comparison_id(comparison_id)
        if request.method == "PATCH":
            update = cmp.validate_update(parse_json_body(request))
            if number is None:
                raise InputError(f"no comparison {comparison_id}", status=404)
            record = await write(lambda con: finish_update(con, number, update))
            return json_response(record, headers=NO_STORE)
        record = await store.read(cmp.fetch_comparison, number) if number is not None else None
        if record is None:
            raise InputError(f"no comparison {comparison_id}", status=404)
        return json_response(record, headers=NO_STORE)

    def finish_update(con, number: int, update: cmp.ComparisonUpdate) -> dict[str, Any]:
        """On the writer thread: check the transition, attribute energy to a finished run, commit."""
        current = cmp.current_status(con, number)
        if current is None:
            raise InputError(f"no comparison {number}", status=404)
        status, started_ms = current
        cmp.check_transition(status, update.status)
        now_ms = int(time.time() * 1000)
        energy = carbon = None
        if update.status in cmp.FINISHED and started_ms is not None:
            sampler.flush()
            joules = sampler.comparison_energy_j(con, number, started_ms, now_ms)
            energy = kwh(joules * settings.pue)
            carbon = carbon_kg(energy, sampler.sources.grid.g_per_kwh)
        elif update.status in cmp.FINISHED:
            energy, carbon = 0.0, 0.0
        return store.transaction(lambda c: cmp.apply_update(c, number, update, now_ms, energy, carbon))

    # -- offsets ------------------------------------------------------------------------------------
    @route("/api/offsets", ("GET", "POST"))
    async def offsets(request: Request):
        if request.method == "POST":
            offset = cmp.validate_offset(parse_json_body(request), time.time())
            record = await write(lambda con: store.transaction(
                lambda c: cmp.insert_offset(c, offset, int(time.time() * 1000))))
            return json_response(record, status=201, headers=NO_STORE)
        _query(request, ())
        return json_response(await store.read(cmp.list_offsets), headers=NO_STORE)

    # -- energy -------------------------------------------------------------------------------------
    @route("/api/energy", ("GET",))
    async def energy(request: Request):
        from_ms, to_ms = time_range(_query(request, ("from", "to")), "-24h", time.time())
        sums = await store.read(sampler.energy_between, from_ms, to_ms)
        pue = settings.pue
        grid = sampler.sources.grid
        total = kwh(sums.total_j * pue)
        methods = methods_of(sums.methods(), bool(sampler.sources.gpu.gpus)) if sums.rows else \
            current_methods(sampler.sources.meter, sampler.sources.gpu)
        return json_response({
            "from": from_ms, "to": to_ms,
            "energyKwh": {"cpu": kwh(sums.cpu_j * pue), "gpu": kwh(sums.gpu_j * pue),
                          "memory": kwh(sums.mem_j * pue), "total": total},
            "carbonKg": carbon_kg(total, grid.g_per_kwh),
            "gPerKwh": grid.g_per_kwh,
            "pue": pue,
            "samples": sums.rows,
            "methods": methods.as_dict(),
        }, headers=NO_STORE)

    # -- history ------------------------------------------------------------------------------------
    async def known_gpus() -> set[int]:
        """GPUs the database has rows of, and those present now."""
        return set(await store.read(history.gpu_indexes)) | {info.index for info in sampler.sources.gpu.gpus}

    @route("/api/metrics", ("GET",))
    async def metrics_catalog(request: Request):
        _query(request, ())
        return json_response(catalog(sorted(await known_gpus())), headers=NO_STORE)

    @route("/api/history", ("GET",))
    async def history_route(request: Request):
        args = query_lists(request)
        known = None
        if "gpu" in "".join(args.get("metrics", [])):
            known = await known_gpus()
        query = history.parse_history_query(args, time.time(), known)
        rollups = sampler.rollups
        answer = await store.read(history.run_history, query, rollups.minutes_until, rollups.hours_until)
        if query.format == "csv":
            return raw(history.to_csv(answer, query.aggregates).encode(), content_type="text/csv; charset=utf-8",
                       headers=NO_STORE)
        return json_response(answer, headers=NO_STORE)

    # -- operations ---------------------------------------------------------------------------------
    @route("/metrics", ("GET",))
    async def metrics(request: Request):
        snapshot = await current_snapshot()
        return raw(render_metrics(sampler, requests, snapshot), content_type=METRICS_CONTENT_TYPE,
                   headers=NO_STORE)

    @route("/healthz", ("GET",), public=True)
    async def healthz(request: Request):
        health = sampler.health
        last = health.last_tick_mono
        age = None if last is None else round(sampler.clocks.monotonic() - last, 3)
        problems = []
        if sampler.stalled:
            problems.append("the sampler has not sampled for more than 5 s")
        snapshot = sampler.snapshot
        if snapshot is None:
            problems.append("the first stats are not ready yet")
        if not health.last_flush_ok:
            problems.append(f"the database cannot be written: {health.last_flush_error}")
        body = {
            "status": "ok" if not problems else "unhealthy",
            "lastSampleAgeS": age,
            "database": {"path": store.path, "writable": health.last_flush_ok,
                         "lastError": health.last_flush_error or None, "flushes": health.flushes},
            "samplesLost": health.lost_rows,
            "stats": None if snapshot is None else {
                "builds": snapshot.version, "ageS": round(sampler.clocks.monotonic() - snapshot.built_mono, 3)},
            "problems": problems,
        }
        return json_response(body, status=200 if not problems else 503, headers=NO_STORE)

    return app
