"""The Sanic application over a ``ServiceView``: the route groups of ``routes/`` on the router's plumbing (JSON
errors, bearer token, CORS, request accounting)."""

from __future__ import annotations

import sys

from sanic import Sanic

from tsstats.api.bodies import MAX_BODY_BYTES
from tsstats.api.exposure import HostCheck
from tsstats.api.router import Router
from tsstats.api.routes import comparisons, dashboard, history, operations
from tsstats.api.view import ServiceView

RESPONSE_TIMEOUT_S = 3600

ROUTE_GROUPS = (dashboard.add_routes, comparisons.add_routes, comparisons.add_phase_routes,
                comparisons.add_study_routes, history.add_routes, history.add_grid_routes, operations.add_data_routes,
                operations.add_routes, dashboard.add_page_routes)


def create_app(view: ServiceView, hosts: HostCheck, *, name: str = "tsstats") -> Sanic:
    """The application over a started service's view (the service is owned by the caller)."""
    settings = view.settings
    app = Sanic(name, configure_logging=False)  # its lines go through the root logger once, not twice
    app.config.REQUEST_MAX_SIZE = MAX_BODY_BYTES
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.KEEP_ALIVE_TIMEOUT = 75
    # an export or a backup of a large file is written whole before its first byte is sent (minutes for 90 days
    # at 10 Hz); Sanic's 60 s would answer 503 "Response Timeout" to it. Every byte sent starts the count again.
    app.config.RESPONSE_TIMEOUT = RESPONSE_TIMEOUT_S
    app.config.MOTD = False
    # Sanic's touch-up rewrites its own handlers from their source, which a one-file executable does not carry
    app.config.TOUCHUP = not getattr(sys, "frozen", False)
    router = Router(app, settings.token, settings.cors_origins, view.requests, hosts)
    for add_routes in ROUTE_GROUPS:
        add_routes(router, view)
    return app
