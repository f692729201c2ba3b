"""The HTTP routes, grouped by concern; each module's ``add_*routes(router, view)`` functions register its groups
(``app.ROUTE_GROUPS`` lists them all): ``dashboard`` (stats, stream, page), ``comparisons`` (comparisons, offsets,
phases, studies), ``history`` (history, energy, catalog, grid), ``operations`` (metrics, health, OpenAPI, exports,
backups)."""
