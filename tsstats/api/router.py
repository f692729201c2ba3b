"""The router: every handler wrapped with preflight, the bearer token, CORS, JSON errors and the accounting of
this service's own requests (a wrapper costs less per request than Sanic middleware)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from time import perf_counter

from sanic import Request, Sanic
from sanic.exceptions import MethodNotAllowed, NotFound, SanicException
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from tsstats.api.bodies import MAX_BODY_BYTES, error_body
from tsstats.api.requests import RequestStats
from tsstats.core.inputs import InputError
from tsstats.storage.errors import StoreUnavailable

log = logging.getLogger("tsstats.server")


Handler = Callable[..., Awaitable[HTTPResponse | None]]


class Router:
    """Registers handlers on ``app`` with preflight, the token, CORS, JSON errors and request accounting."""

    def __init__(self, app: Sanic, token: str, cors_origins: tuple[str, ...], requests: RequestStats):
        self.app = app
        self.token = token.encode() if token else None
        self.origins = set(cors_origins)
        self.account = requests.record
        app.exception(Exception)(self._outside_handlers)

    def cors_headers(self, request: Request) -> dict[str, str]:
        """The CORS headers of an answer to an allowed origin (none for other origins)."""
        origin = request.headers.get("origin")
        if origin is not None and origin in self.origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def _authorized(self, request: Request) -> bool:
        supplied = request.headers.get("authorization") or ""
        scheme, _, value = supplied.partition(" ")
        token = self.token
        return token is not None and scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token)

    def route(self, path: str, methods: tuple[str, ...], *, public: bool = False, accounted: bool = True):
        accounted = accounted and path.startswith("/api/")
        guarded = self.token is not None and not public
        account, authorized, error_response, preflight = (self.account, self._authorized, self.error_response,
                                                          self._preflight)
        cors_headers = self.cors_headers

        def register(handler: Handler) -> Handler:
            async def wrapped(request: Request, **kwargs):
                started = perf_counter()
                if request.method == "OPTIONS":
                    return preflight(request)
                response: HTTPResponse | None
                if guarded and not authorized(request):
                    response = json_response(error_body(401, "missing or wrong bearer token"), status=401,
                                             headers={"WWW-Authenticate": 'Bearer realm="tsstats"'})
                else:
                    try:
                        response = await handler(request, **kwargs)
                    except Exception as error:
                        response = error_response(request, error)
                if response is not None:  # None: a stream that answered by itself
                    response.headers.update(cors_headers(request))
                    if accounted:
                        finished = perf_counter()
                        account(finished - started, response.status, finished)
                return response

            wrapped.__name__ = handler.__name__
            self.app.route(path, methods=list(methods) + ["OPTIONS"], name=handler.__name__)(wrapped)
            return handler

        return register

    def _preflight(self, request: Request) -> HTTPResponse:
        methods = sorted(set(request.route.methods) | {"OPTIONS"}) if request.route else ["OPTIONS"]
        headers = {"Allow": ", ".join(methods)}
        cors = self.cors_headers(request)
        if cors:
            headers.update(cors, **{"Access-Control-Allow-Methods": ", ".join(methods),
                                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                                    "Access-Control-Max-Age": "600"})
        return HTTPResponse(status=204, headers=headers)

    def error_response(self, request: Request, error: Exception) -> HTTPResponse:
        """The JSON error for any exception, from a handler or from Sanic's routing and body limits."""
        headers: dict[str, str] = {}
        field = None
        if isinstance(error, InputError):
            status, message, field = error.status, error.message, error.field
        elif isinstance(error, StoreUnavailable):
            status, message = 503, f"the database cannot be used for now: {error.reason}; nothing was written"
            headers["Retry-After"] = str(error.retry_after_s)
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
            if status == 413 and "header" in str(error).lower():
                message = (f"the request line and headers are larger than {request.app.config.REQUEST_MAX_HEADER_SIZE}"
                           " bytes")
            elif status == 413:
                message = f"the body is larger than {MAX_BODY_BYTES} bytes"
            else:
                message = str(error) or ("internal error" if status >= 500 else "bad request")
            if status >= 500:
                log.error("%s %s failed: %s", request.method, request.path, error)
        else:
            log.error("%s %s failed", request.method, request.path, exc_info=error)
            status, message = 500, "internal error; see the server log"
        return json_response(error_body(status, message, field), status=status, headers=headers)

    async def _outside_handlers(self, request: Request, error: Exception) -> HTTPResponse:
        """Errors Sanic raises before a handler runs: unknown route, wrong method, body too large."""
        response = self.error_response(request, error)
        response.headers.update(self.cors_headers(request))
        started = getattr(getattr(request, "stream", None), "perft0", None)
        if request.path.startswith("/api/"):
            self.account(perf_counter() - started if started else 0.0, response.status)
        return response
