"""The client side of benchmark scripts: ``track`` (``tsstats.track``, a context manager and decorator), ``study``
(``tsstats.compare``: contenders, shuffled rounds, measured trials, the report and exports), ``statistics`` (means,
spread, intervals, Welch's t, ratios) and ``service`` (the one HTTP client of a running service, and the runtime
file beside a served database that says where it answers). Standard library only, so that ``import tsstats`` costs
next to nothing and loads neither DuckDB, Sanic nor NumPy; runs in the user's process, on the thread that calls it.
Imports nothing else of tsstats (import-linter holds this, and that it imports no third-party package).
"""
