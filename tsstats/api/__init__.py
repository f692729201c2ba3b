"""The HTTP API: the Sanic app and its routes, the router's shared plumbing (token, CORS, JSON errors, request
accounting), the OpenAPI document, the two renderers of ``Figures`` (the dashboard's JSON, Prometheus text),
the page and its assets, the ``ServiceView`` through which handlers see the service, and the OTLP push of the
same metrics (``otlp``: a thread of its own, the OpenTelemetry SDK imported only when it is configured).

Handlers run on Sanic's event loop; their reads go to the store's read pool, their writes to the writer
thread (``ServiceView.write``), and nothing here blocks the loop on the database. May import every layer
below it (``core``, ``sources``, ``figures``, ``storage``, ``sampling``, ``comparisons``); only the assembly
and the command line import it.
"""
