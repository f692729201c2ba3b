"""The HTTP routes, grouped by concern; each module's ``add_routes(router, view)`` registers its group."""
