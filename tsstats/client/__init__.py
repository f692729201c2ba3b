"""The client side of benchmark scripts: ``tsstats.track`` (a context manager and decorator) and the HTTP calls
it makes to a running service. Standard library only, so that ``import tsstats`` costs next to nothing and loads
neither DuckDB, Sanic nor NumPy; runs in the user's process, on the thread that calls it. Imports nothing else of
tsstats (import-linter holds this, and that it imports no third-party package).
"""
