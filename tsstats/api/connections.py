"""Connections no client can use to lock others out (event loop thread).

Sanic's own timeouts restart on every byte received, so a client sending one header line every few seconds
holds its connection for good, and nothing bounds how many connections are open. Here, on top of Sanic's
HTTP protocol:

- a request's head and body must arrive within ``request_timeout`` in total, counted from its first byte
  (408 and the connection closed after);
- at most ``max_connections`` are open for any request. Beyond that, a new connection first closes the
  longest-idle ones (keep-alive connections between requests, or ones that have sent nothing yet), then the
  oldest whose head has been trickling in for ``SLOW_HEAD_S``; when there are none (every connection is busy,
  streams for instance) it gets one of ``RESERVED_CONNECTIONS`` more slots, which answer only ``/healthz`` and
  the stats route and must send their request within ``RESERVED_TIMEOUT_S``; beyond those it is answered 503
  at once;
- the bodies over ``SMALL_BODY_BYTES`` being received share ``BODY_BUDGET_BYTES``: a request whose body does
  not fit is answered 503 with ``Retry-After`` before its body is read (as is one refused for its Host, Origin
  or token), and its body is never read, so held-back bodies cannot take the memory nor the loop's time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar

from sanic import HTTPResponse, Request
from sanic.exceptions import RequestTimeout
from sanic.http import Http, Stage
from sanic.response import json as json_response
from sanic.server.protocols.http_protocol import HttpProtocol

from tsstats.api.bodies import error_body
from tsstats.core.units import MIB

LIGHT_PATHS = frozenset({"/healthz", "/api/dashboard/stats"})  # what the reserved connections answer
RESERVED_CONNECTIONS = 16
RESERVED_TIMEOUT_S = 2.0
KEEP_ALIVE_SPARED_S = 2.0  # a keep-alive connection used within this long is not closed to make room
SLOW_HEAD_S = 1.0  # a head still arriving after this long may be closed to make room for a new connection
BODY_BUDGET_BYTES = 32 * MIB  # request bodies being received, all connections together
SMALL_BODY_BYTES = 24 * 1024  # bodies up to this size (a comparison with its 16 KiB of metadata, an offset) are
# outside the budget, bounded by the connections (and Sanic's 64 KiB read buffer each): no one holding large
# bodies can keep a comparison runner from writing
DESCRIPTORS_KEPT = 128  # open files kept for the database, its WAL, exports and the log beside connections
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int
    request_timeout_s: float  # to receive a request's head and body, in total


class EarlyAnswer(Exception):
    """An answer given before the body is read (raised from ``GuardedHttp``'s head step, sent by the error
    handler)."""

    def __init__(self, response: HTTPResponse):
        super().__init__(response.status)
        self.response = response


class BodyBudget:
    """Bytes of request bodies that may be held at once (event loop thread only: no lock)."""

    def __init__(self, total_bytes: int):
        self.total_bytes = total_bytes
        self.held_bytes = 0

    def take(self, size: int) -> bool:
        if self.held_bytes + size > self.total_bytes:
            return False
        self.held_bytes += size
        return True

    def give(self, size: int) -> None:
        self.held_bytes = max(self.held_bytes - size, 0)


def refused_connection(message: str) -> bytes:
    """The whole 503 answer written to a connection refused before it sent anything."""
    body = json.dumps(error_body(503, message)).encode()
    return ("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nretry-after: {RETRY_AFTER_S}\r\nconnection: close\r\n\r\n").encode() + body


class GuardedHttp(Http):
    """Sanic's HTTP/1.1 exchange with one step more: once a head is read, before its body is, the app's
    ``ctx.before_body(request)`` refuses what it must (``EarlyAnswer``). Only requests with a body, or on a
    reserved connection, pay for the check: the stats poller's GET does not."""

    __slots__ = ()

    async def http1_request_header(self) -> None:
        began = getattr(self.protocol, "request_began", None)
        if began is not None:  # the first bytes of a request are in
            began()
        await super().http1_request_header()
        check = getattr(self.protocol.app.ctx, "before_body", None)
        if check is not None and (self.request_body or getattr(self.protocol, "light_only", False)):
            check(self.request)


class GuardedProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol with the bounds above; ``guarded_protocol`` makes the class a server runs."""

    HTTP_CLASS = GuardedHttp

    __slots__ = ("opened_mono", "began_mono", "light_only", "body_held", "deadline", "answered_early")
    limits: ClassVar[ConnectionLimits]
    budget: ClassVar[BodyBudget]
    clock: ClassVar[Callable[[], float]]
    silent: ClassVar[dict[Any, None]]  # connections that have not sent a byte yet, the oldest first

    def connection_made(self, transport: Any) -> None:
        self.opened_mono = self.began_mono = type(self).clock()
        self.light_only = self.answered_early = False
        self.body_held = 0
        self.deadline: Any = None
        super().connection_made(transport)
        self.silent[self] = None
        over = len(self.connections) - self.limits.max_connections
        if over <= 0:
            return
        self.make_room(over)
        if len(self.connections) <= self.limits.max_connections:
            return
        if len(self.connections) <= self.limits.max_connections + RESERVED_CONNECTIONS:
            self.light_only = True
            return
        transport.write(refused_connection(f"{self.limits.max_connections} connections are open, the most "
                                           "max_connections allows; try again in a moment"))
        self.close()

    def make_room(self, wanted: int) -> None:
        """Close up to ``wanted`` other connections: those that have sent nothing for ``SLOW_HEAD_S`` (the oldest
        first, without a scan; a younger one may not have had the time to send its request, and closing it would
        only make its client come back at once), then heads trickling in for as long and bodies still arriving
        after an early answer, then keep-alive connections idle for ``KEEP_ALIVE_SPARED_S`` or more, the
        longest idle first (one that has just been answered may have its next request on the way already)."""
        now = type(self).clock()
        closing = [other for other in islice(self.silent, wanted + 1)
                   if other is not self and now - other.opened_mono >= SLOW_HEAD_S][:wanted]
        if len(closing) < wanted:
            others = [other for other in self.connections if other is not self and other not in self.silent]
            stuck = sorted((o for o in others if is_stuck(o, now)), key=lambda o: o.began_mono)
            idle = sorted((o for o in others if is_idle(o) and now - o.began_mono >= KEEP_ALIVE_SPARED_S),
                          key=lambda o: o.began_mono)
            closing += (stuck + idle)[:wanted - len(closing)]
        for other in closing:
            self.silent.pop(other, None)
            self.connections.discard(other)
            other.close()

    def request_began(self) -> None:
        """A request's first bytes are in (its head is about to be read): its deadline runs from now."""
        self.silent.pop(self, None)
        if self.body_held:
            self.give_body()
        self.answered_early = False
        self.began_mono = type(self).clock()
        if self.deadline is None:
            self.deadline = self.loop.call_later(self.receive_timeout(), self.check_received)

    def receive_timeout(self) -> float:
        return RESERVED_TIMEOUT_S if self.light_only else self.limits.request_timeout_s

    def check_received(self) -> None:
        """At the deadline: a request whose head or body has not all arrived is ended with a 408."""
        self.deadline = None
        if self._task is None or not (receiving_head(self) or receiving_body(self)):
            return  # received and being answered, or between requests (the keep-alive timeout's business)
        left = self.receive_timeout() - (type(self).clock() - self.began_mono)
        if left > 0:  # a later request on the same connection: its own deadline
            self.deadline = self.loop.call_later(left, self.check_received)
            return
        http = getattr(self, "_http", None)
        if http is not None:
            http.exception = RequestTimeout("the request's head and body did not arrive within "
                                            f"{self.receive_timeout():g} s (request_timeout)")
        self._task.cancel()

    def take_body(self, size: int) -> bool:
        if not self.budget.take(size):
            return False
        self.body_held += size
        return True

    def give_body(self) -> None:
        self.budget.give(self.body_held)
        self.body_held = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self.silent.pop(self, None)
        self.give_body()
        if self.deadline is not None:
            self.deadline.cancel()
        super().connection_lost(exc)


def guarded_protocol(limits: ConnectionLimits, budget: BodyBudget,
                     monotonic: Callable[[], float] = time.monotonic) -> type[HttpProtocol]:
    """The protocol class a server runs (``app.run(protocol=...)``), with its limits, budget, clock and its own
    record of the connections that have sent nothing."""
    return type("GuardedProtocol", (GuardedProtocol,), {"__slots__": (), "limits": limits, "budget": budget,
                                                      "clock": staticmethod(monotonic), "silent": {}})


def is_idle(protocol: GuardedProtocol) -> bool:
    """Between requests on a keep-alive connection."""
    http = getattr(protocol, "_http", None)
    return http is not None and http.stage is Stage.IDLE and not protocol.recv_buffer and not http.request_body


def receiving_head(protocol: GuardedProtocol) -> bool:
    """Its connection task not set up yet, or a head on its way."""
    http = getattr(protocol, "_http", None)
    return http is None or http.stage is Stage.REQUEST or (http.stage is Stage.IDLE and bool(protocol.recv_buffer))


def receiving_body(protocol: GuardedProtocol) -> bool:
    http = getattr(protocol, "_http", None)
    return http is not None and bool(http.request_body)


def is_stuck(protocol: GuardedProtocol, now: float) -> bool:
    """A head trickling in for ``SLOW_HEAD_S`` or more (a client's head takes milliseconds), or a body still
    arriving after the request was answered early (refused before its body was read)."""
    if protocol.answered_early and receiving_body(protocol):
        return True
    return receiving_head(protocol) and now - protocol.began_mono >= SLOW_HEAD_S


def guarded_connection(request: Request) -> GuardedProtocol | None:
    """The guarded connection a request came on; None for another (the in-process test client's)."""
    protocol = getattr(getattr(request, "stream", None), "protocol", None)
    return protocol if isinstance(protocol, GuardedProtocol) else None


def answered_early(request: Request) -> None:
    """A request answered before its body was read: the body is not read at all (Sanic would read and drop it,
    a megabyte for each refused request), and the connection closes once the answer is sent; until then it is
    one to close first when room is needed."""
    protocol = guarded_connection(request)
    if protocol is None:
        return
    protocol.answered_early = True
    stream: Any = request.stream
    if stream.request_body:
        stream.request_body = None
        stream.keep_alive = False


def admit(request: Request, max_body_bytes: int) -> None:
    """Before a request's body is read: a reserved connection answers light routes only, and the body must fit
    in the budget (``EarlyAnswer`` with a 503 otherwise). Requests not on a guarded connection pass."""
    protocol = guarded_connection(request)
    if protocol is None:
        return
    stream: Any = request.stream
    if protocol.light_only and request.path not in LIGHT_PATHS:
        stream.keep_alive = False
        raise EarlyAnswer(busy("every connection is taken; this one answers only /healthz and the stats route"))
    length = request.headers.get("content-length") or ""
    chunked = "chunked" in (request.headers.get("transfer-encoding") or "").lower()
    if not length and not chunked:
        return
    size = max_body_bytes if chunked or not length.isdigit() else min(int(length), max_body_bytes)
    if size > SMALL_BODY_BYTES and not protocol.take_body(size):  # answered_early closes the connection
        raise EarlyAnswer(busy(f"request bodies of {BODY_BUDGET_BYTES // MIB} MiB are being received already; "
                               "try again in a moment"))


def released(request: Request) -> None:
    """The body's share of the budget is given back once the answer is on its way."""
    protocol = guarded_connection(request)
    if protocol is not None and protocol.body_held:
        protocol.give_body()


def busy(message: str) -> HTTPResponse:
    return json_response(error_body(503, message), status=503,
                         headers={"Retry-After": str(RETRY_AFTER_S), "Connection": "close"})


def raise_open_files_limit(resource: Any) -> int:
    """Raise the soft limit of open files to the hard one (``resource`` is the module); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int, open_files: int) -> int:
    """``max_connections`` within the open files there are, less those kept for the database and the rest."""
    return max(min(wanted, open_files - DESCRIPTORS_KEPT - RESERVED_CONNECTIONS), 1)
