"""The router: every handler wrapped with preflight, the bearer token, CORS, JSON errors and the accounting of this
service's own requests (a wrapper costs less per request than Sanic middleware). Event loop.

Prepared answers (``PreparedResponse``): answers whose constant headers are encoded once, at start-up.

Sanic sanitizes and encodes every header of every answer; with the security headers that was the largest single cost
of the stats route under load (measured with py-spy). A prepared answer carries its constant headers as bytes, and
handles the headers Sanic sets per request (content length, connection) without its generic sanitizing.

``RequestStats``: this service's own API requests, handling time and status, over a sliding window and since start.

The dashboard's responseTime and errorRate describe the comparison work, not this service; these figures go to
``/metrics`` (a request-duration histogram and a request counter by status class) and ``meta.service``. Requests are
counted into one-second buckets (plain lists: this runs on every request), so memory stays fixed however heavy the
load. One thread records (the server's event loop) and needs no lock; readers copy the lists, and at worst see one
request's counts a bucket late.
"""

from __future__ import annotations

import bisect
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from time import perf_counter

from sanic import Request, Sanic
from sanic.compat import Header
from sanic.exceptions import MethodNotAllowed, NotFound, SanicException
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from tsstats.api.bodies import MAX_BODY_BYTES, error_body
from tsstats.api.connections import EarlyAnswer, admit, answered_early, released
from tsstats.api.exposure import HostCheck
from tsstats.core.inputs import InputError, shown
from tsstats.figures.moment import RequestSummary
from tsstats.storage.sql import InsufficientStorage, ReadsBusy, StoreUnavailable

log = logging.getLogger("tsstats.server")
WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# the page works with no inline script, style element or frame; its favicon is a data: URL
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                    "Content-Security-Policy": CONTENT_SECURITY_POLICY}


Handler = Callable[..., Awaitable[HTTPResponse | None]]


class Router:
    """Registers handlers on ``app`` with preflight, the token, CORS, JSON errors and request accounting."""

    def __init__(self, app: Sanic, token: str, cors_origins: tuple[str, ...], requests: RequestStats,
                 hosts: HostCheck):
        self.app = app
        self.token = token.encode() if token else None
        self.cors_allowed = set(cors_origins)
        self.account = requests.record
        self.hosts = hosts
        app.exception(Exception)(self._outside_handlers)
        app.ctx.before_body = self._before_body  # run by the connection (api.connections.GuardedHttp)

    def _before_body(self, request: Request) -> None:
        """Once a head with a body is read, before the body is: refuse a foreign Host or Origin, a missing
        token (no route that takes a body is public), a reserved connection's heavy route and a body beyond
        the budget (``EarlyAnswer``), so that none of them costs the memory of a body."""
        refused = self.refusal(request)
        if refused is not None:
            raise EarlyAnswer(refused)
        if request.method != "OPTIONS" and self.token is not None and not self._authorized(request):
            raise EarlyAnswer(self.unauthorized())
        admit(request, MAX_BODY_BYTES)

    @staticmethod
    def unauthorized() -> HTTPResponse:
        return json_response(error_body(401, "missing or wrong bearer token"), status=401,
                             headers={"WWW-Authenticate": 'Bearer realm="tsstats"'})

    def cors_headers(self, request: Request) -> dict[str, str]:
        """The CORS headers of an answer to an allowed origin (none for other origins)."""
        origin = request.headers.get("origin")
        if origin is not None and origin in self.cors_allowed:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    def answer_headers(self, request: Request) -> dict[str, str]:
        """Every header an answer carries besides its own: the security headers, and CORS for an allowed origin."""
        cors = self.cors_headers(request)
        return {**SECURITY_HEADERS, **cors} if cors else SECURITY_HEADERS

    def refusal(self, request: Request) -> HTTPResponse | None:
        """The answer to a request from where this service must not be reached (a foreign Host, a write from a
        foreign Origin), before any work; None for a request to serve."""
        try:
            allowed = self.hosts.allows(request.headers.get("host"))
        except InputError as error:
            return json_response(error_body(400, error.message, "host"), status=400, headers=SECURITY_HEADERS)
        if not allowed:
            return json_response(error_body(421, f"this service does not answer to the Host "
                                                 f"{(request.headers.get('host') or 'none')[:100]!r}; allowed: "
                                                 f"{', '.join(self.hosts.names())} (setting allowed_hosts)"),
                                 status=421, headers=SECURITY_HEADERS)
        if request.method in WRITES:
            origin = request.headers.get("origin")
            if origin is not None and origin not in self.cors_allowed and origin != f"{request.scheme}://{request.host}":
                return json_response(error_body(403, f"a write from the origin {origin[:100]!r} is refused; allowed: "
                                                     "this service's own and cors_origins"),
                                     status=403, headers=SECURITY_HEADERS)
        return None

    def authorized(self, request: Request) -> bool:
        """Whether a request may see what the token protects (always, without a token)."""
        return self.token is None or self._authorized(request)

    def _authorized(self, request: Request) -> bool:
        """Whether the request carries the token: the header's bytes as sent (Sanic keeps bytes that are not
        UTF-8 as surrogates) against the token's UTF-8, so a token may hold any character and any bytes are
        a 401 at worst."""
        supplied = request.headers.get("authorization") or ""
        scheme, _, value = supplied.partition(" ")
        token = self.token
        return token is not None and scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode("utf-8", "surrogateescape"), token)

    def route(self, path: str, methods: tuple[str, ...], *, public: bool = False, accounted: bool = True):
        accounted = accounted and path.startswith("/api/")
        guarded = self.token is not None and not public
        account, authorized, error_response, preflight = (self.account, self._authorized, self.error_response,
                                                          self._preflight)
        answer_headers, refusal, cors_headers = self.answer_headers, self.refusal, self.cors_headers
        unauthorized = self.unauthorized

        def register(handler: Handler) -> Handler:
            async def wrapped(request: Request, **kwargs):
                started = perf_counter()
                refused = refusal(request)
                if refused is not None:
                    return refused
                if request.method == "OPTIONS":
                    return preflight(request)
                response: HTTPResponse | None
                if guarded and not authorized(request):
                    response = unauthorized()
                else:
                    try:
                        response = await handler(request, **kwargs)
                    except Exception as error:
                        response = error_response(request, error)
                if request.body:
                    released(request)  # the body's share of the budget, once it has been handled
                if response is not None:  # None: a stream that answered by itself
                    if isinstance(response, PreparedResponse):  # the security headers are among its own
                        response.headers.update(cors_headers(request))
                    else:
                        response.headers.update(answer_headers(request))
                    if accounted:
                        finished = perf_counter()
                        account(finished - started, response.status, finished)
                return response

            wrapped.__name__ = handler.__name__
            # a path's parameters reach the handler %-decoded (a study named "two words" is /api/studies/two%20words)
            self.app.route(path, methods=list(methods) + ["OPTIONS"], name=handler.__name__, unquote=True)(wrapped)
            return handler

        return register

    def _preflight(self, request: Request) -> HTTPResponse:
        methods = sorted(set(request.route.methods) | {"OPTIONS"}) if request.route else ["OPTIONS"]
        headers = {"Allow": ", ".join(methods), **SECURITY_HEADERS}
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
        elif isinstance(error, ReadsBusy):
            status, message = 503, str(error)
            headers["Retry-After"] = str(error.retry_after_s)
        elif isinstance(error, InsufficientStorage):
            status, message = 507, str(error)
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
                log.error("%s %s failed: %s", request.method, shown(request.path, 200), shown(str(error), 500))
        else:  # one line a request, whatever it sent; the traceback only at debug level
            log.error("%s %s failed: %s: %s", request.method, shown(request.path, 200), type(error).__name__,
                      shown(str(error), 500))
            log.debug("the traceback of %s %s", request.method, shown(request.path, 200), exc_info=error)
            status, message = 500, "internal error; see the server log"
        return json_response(error_body(status, message, field), status=status, headers=headers)

    async def _outside_handlers(self, request: Request, error: Exception) -> HTTPResponse:
        """Errors Sanic raises before a handler runs: unknown route, wrong method, body too large."""
        # an unknown route or method is refused like a known one from a foreign Host; a request Sanic could
        # not even read (a head or body over its limits) gets its own error
        if isinstance(error, EarlyAnswer):
            answered_early(request)
            response = error.response
        else:
            refused = self.refusal(request) if isinstance(error, (NotFound, MethodNotAllowed)) else None
            response = refused if refused is not None else self.error_response(request, error)
        response.headers.update(self.answer_headers(request))
        started = getattr(getattr(request, "stream", None), "perft0", None)
        if request.path.startswith("/api/"):
            self.account(perf_counter() - started if started else 0.0, response.status)
        return response


_FORBIDDEN = str.maketrans({"\r": None, "\n": None})
_CONNECTION = {"keep-alive": (b"connection", b"keep-alive"), "close": (b"connection", b"close")}


@dataclass(frozen=True)
class PreparedHeaders:
    """Constant headers, encoded; ``names`` in lower case."""

    pairs: tuple[tuple[bytes, bytes], ...]
    names: frozenset[str]


def prepare_headers(headers: Mapping[str, str]) -> PreparedHeaders:
    pairs = tuple((name.translate(_FORBIDDEN).lower().encode("ascii"), value.translate(_FORBIDDEN).encode())
                  for name, value in headers.items())
    return PreparedHeaders(pairs, frozenset(name.lower() for name in headers))


class PreparedResponse(HTTPResponse):
    __slots__ = ("constant",)

    def __init__(self, body: bytes, constant: PreparedHeaders, status: int = 200):
        """``constant``: the prepared headers, the content type among them."""
        # HTTPResponse.__init__ builds two header maps and encodes the body; a prepared body is bytes already
        self.asgi = False
        self.body = body
        self.content_type = None
        self.stream = None
        self.status = status
        self.headers = Header()
        self._cookies = None
        self.constant = constant

    @property
    def processed_headers(self) -> Iterator[tuple[bytes, bytes]]:
        lines = list(self.constant.pairs)
        for name, value in self.headers.items():
            if name == "content-length" and type(value) is int:
                lines.append((b"content-length", b"%d" % value))
            elif name == "connection" and value in _CONNECTION:
                lines.append(_CONNECTION[value])
            elif name not in self.constant.names:
                lines.append((self._sanitize_header_value(name).encode("ascii"),
                              self._sanitize_header_value(f"{value}").encode(errors="surrogateescape")))
        return iter(lines)


# upper bounds of the duration histogram, in seconds (Prometheus' ``le``)
DURATION_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                      2.5, 5.0, 10.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class RequestStats:
    def __init__(self, window_s: int = 300, clock: Callable[[], float] = time.perf_counter):
        self.window_s = window_s
        self._clock = clock
        self._second = [-1] * window_s  # which second each bucket holds
        self._count = [0] * window_s
        self._errors = [0] * window_s
        self._total_s = [0.0] * window_s
        self._by_hundreds = [0] * 10  # since start, by status // 100
        self.duration_counts = [0] * (len(DURATION_BUCKETS_S) + 1)  # per bucket, the last one +Inf
        self.total_seconds = 0.0

    @property
    def by_class(self) -> dict[str, int]:
        """Requests since start by status class, ``1xx`` to ``5xx``."""
        return {name: self._by_hundreds[i + 1] for i, name in enumerate(STATUS_CLASSES)}

    def record(self, duration_s: float, status: int, now: float | None = None) -> None:
        """Count one response; ``now`` is the clock's reading if the caller has it already."""
        second = int(self._clock() if now is None else now)
        slot = second % self.window_s
        if self._second[slot] != second:
            self._count[slot] = 0
            self._errors[slot] = 0
            self._total_s[slot] = 0.0
            self._second[slot] = second
        self._count[slot] += 1
        self._total_s[slot] += duration_s
        if status >= 500:
            self._errors[slot] += 1
        self._by_hundreds[status // 100] += 1  # HTTP statuses are 100 to 599
        self.duration_counts[bisect.bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        self.total_seconds += duration_s

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """(le, requests at most that long) for every bound and +Inf, as Prometheus' histogram wants them."""
        counts = list(self.duration_counts)
        bounds = [f"{bound:g}" for bound in DURATION_BUCKETS_S] + ["+Inf"]
        running = 0
        buckets = []
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets

    def summary(self) -> RequestSummary:
        """Mean handling time and 5xx share over the window."""
        oldest = int(self._clock()) - self.window_s
        seconds, counts, errors_by, totals = (list(self._second), list(self._count), list(self._errors),
                                              list(self._total_s))
        count = errors = 0
        total = 0.0
        for slot, second in enumerate(seconds):
            if second > oldest:
                count += counts[slot]
                errors += errors_by[slot]
                total += totals[slot]
        if count == 0:
            return RequestSummary(self.window_s, 0, 0.0, 0.0)
        return RequestSummary(self.window_s, count, 1000.0 * total / count, 100.0 * errors / count)
