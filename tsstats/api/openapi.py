"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /openapi.json``; a test holds it to the app's
routes both ways, and schemathesis fuzzes the running service from it."""

from __future__ import annotations

from typing import Any

from tsstats import __version__
from tsstats.api.openapi_schemas import (
    CURSOR,
    DURATION,
    ID,
    JSON,
    METRICS,
    SCHEMAS,
    STREAM_EVENT,
    TIME,
    TIME_TEXT,
    names_schema,
    ref,
)
from tsstats.comparisons.validation import MAX_LIMIT, STATUSES
from tsstats.storage.catalog import AGGREGATES
from tsstats.storage.export import FORMATS, TIERS
from tsstats.storage.history import MAX_POINTS


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "a bad parameter or body (the field is named)", 401: "a token is set and missing or wrong",
            404: "no such comparison", 405: "wrong method", 409: "an illegal change of status",
            413: "a body over 1 MiB", 415: "a body that is not application/json",
            503: "not ready, the database writer did not answer in time, or (Retry-After) too many heavy reads "
                 "or connections at once",
            507: "no room: an export or backup beyond the free disk, or a record beyond the records' share of "
                 "max_db_mb; the figures are named"}
    return {str(status): _json(ref("Error"), text[status]) for status in statuses}


def _query(name: str, description: str, schema: dict[str, Any] | None = None,
           required: bool = False) -> dict[str, Any]:
    schema = schema or {"type": "string"}
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required, "description": description,
                                 "schema": schema}
    if schema.get("type") == "array":  # comma-separated: a,b,c
        parameter.update(style="form", explode=False)
    return parameter



TIME_RANGE = [_query("from", f"start: {TIME}", TIME_TEXT), _query("to", f"end: {TIME} (default now)", TIME_TEXT)]


def openapi_document(token_set: bool = True) -> dict[str, Any]:
    """The document of a service with a token (every operation but health and the page needs it) or without one
    (no operation does): it describes the service that serves it."""
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    comparison_id = {"name": "id", "in": "path", "required": True, "schema": ID, "description": "a comparison's id"}
    study_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1,
                                                                          "maxLength": 200},
                "description": "a study's name, as its trials' metadata.study gives it"}
    paths: dict[str, Any] = {
        "/api/dashboard/stats": {"get": {
            "summary": "The dashboard's stats: four objects and meta", "operationId": "stats",
            "responses": {"200": _json(ref("Stats"), "the stats, no older than update_interval"),
                          **_errors(401, 503)}}},
        "/api/dashboard/stream": {"get": {
            "summary": "The stats as Server-Sent Events", "operationId": "stream",
            "responses": {"200": {"description": "`event: stats` with the stats as data, and heartbeats (comment "
                                                 "lines); the schema is each event's (OpenAPI 3.2's itemSchema, "
                                                 "given as schema on 3.1)",
                                  "content": {"text/event-stream": {"schema": STREAM_EVENT,
                                                                    "itemSchema": STREAM_EVENT}}},
                          **_errors(401)}}},
        "/api/comparisons": {
            "get": {"summary": "Comparisons, newest first", "operationId": "listComparisons",
                    "parameters": [_query("status", "only this status", {"enum": list(STATUSES)}),
                                   _query("limit", f"1 to {MAX_LIMIT} (default 50)", limit),
                                   _query("before", "the `next` cursor of the previous page", CURSOR),
                                   _query("fair", "true: only ended runs judged fair; false: only those judged "
                                                  "unfair", {"enum": ["true", "false"]}),
                                   _query("model", "only the comparisons naming this model",
                                          {"type": "string", "minLength": 1, "maxLength": 200})],
                    "responses": {"200": _json(ref("ComparisonList"), "a page"), **_errors(400, 401)}},
            "post": {"summary": "Create a comparison", "operationId": "createComparison",
                     "requestBody": {"required": True, "content": {JSON: {"schema": ref("NewComparison")}}},
                     "responses": {"201": {**_json(ref("Comparison"), "created, committed"), "links": {
                         "GetComparison": {"operationId": "getComparison", "parameters": {"id": "$response.body#/id"}},
                         "UpdateComparison": {"operationId": "updateComparison",
                                              "parameters": {"id": "$response.body#/id"}}}},
                                   **_errors(400, 401, 413, 415, 503, 507)}}},
        "/api/comparisons/{id}": {
            "get": {"summary": "One comparison", "operationId": "getComparison", "parameters": [comparison_id],
                    "responses": {"200": _json(ref("Comparison"), "the record"), **_errors(401, 404)}},
            "patch": {"summary": "Change a comparison's status and report its results", "operationId":
                      "updateComparison", "parameters": [comparison_id],
                      "requestBody": {"required": True, "content": {JSON: {"schema": ref("ComparisonUpdate")}}},
                      "responses": {"200": _json(ref("Comparison"), "updated, committed"),
                                    **_errors(400, 401, 404, 409, 413, 415, 503, 507)}},
            "delete": {"summary": "Remove a comparison and its phases", "operationId": "deleteComparison",
                       "parameters": [comparison_id],
                       "responses": {"204": {"description": "removed, committed"}, **_errors(400, 401, 404, 503)}}},
        "/api/comparisons/{id}/phases": {
            "post": {"summary": "Open a named window inside a running comparison", "operationId": "openPhase",
                     "parameters": [comparison_id],
                     "requestBody": {"required": True, "content": {JSON: {"schema": ref("NewPhase")}}},
                     "responses": {"201": _json(ref("Phase"), "opened, committed"),
                                   **_errors(400, 401, 404, 409, 413, 415, 503, 507)}}},
        "/api/comparisons/{id}/phases/{phase}": {
            "patch": {"summary": "Close a phase (and the phases inside it)", "operationId": "closePhase",
                      "parameters": [comparison_id, {"name": "phase", "in": "path", "required": True,
                                                     "schema": ID, "description": "a phase's id"}],
                      "requestBody": {"required": True, "content": {JSON: {"schema": ref("PhaseEnd")}}},
                      "responses": {"200": _json(ref("Phase"), "closed, committed"),
                                    **_errors(400, 401, 404, 409, 413, 415, 503)}}},
        "/api/offsets": {
            "get": {"summary": "Declared carbon offsets, newest first", "operationId": "listOffsets",
                    "parameters": [_query("limit", f"1 to {MAX_LIMIT} (default 50)", limit),
                                   _query("before", "the `next` cursor of the previous page", CURSOR)],
                    "responses": {"200": _json(ref("OffsetList"), "a page, and the total of all"),
                                  **_errors(400, 401)}},
            "post": {"summary": "Declare a carbon offset", "operationId": "createOffset",
                     "requestBody": {"required": True, "content": {JSON: {"schema": ref("NewOffset")}}},
                     "responses": {"201": _json(ref("Offset"), "created, committed"),
                                   **_errors(400, 401, 413, 415, 503, 507)}}},
        "/api/conditions": {"get": {
            "summary": "Whether the machine is quiet and cool now: the last half second's CPU by whom, the latest "
                       "temperatures (what a study waits on before each trial)", "operationId": "conditionsNow",
            "responses": {"200": _json(ref("ConditionsNow"), "the last half second"), **_errors(400, 401, 503)}}},
        "/api/studies": {"get": {
            "summary": "Studies: the comparisons whose metadata names a study, most recently active first",
            "operationId": "listStudies",
            "responses": {"200": _json(ref("Studies"), "at most 500 studies"), **_errors(400, 401, 503)}}},
        "/api/studies/{id}": {
            "get": {"summary": "A study's figures from its stored trials: per contender energy and time with spread "
                               "and 95 % intervals, the ratios with Welch's t-test", "operationId": "getStudy",
                    "parameters": [study_id],
                    "responses": {"200": _json(ref("Study"), "the study"), **_errors(400, 401, 404, 503)}},
            "delete": {"summary": "Remove every trial of a study", "operationId": "deleteStudy",
                       "parameters": [study_id],
                       "responses": {"204": {"description": "removed, committed"}, **_errors(400, 401, 404, 503)}}},
        "/api/models": {"get": {
            "summary": "Per model: runs by status, results, energy and carbon per run and per item, SCI",
            "operationId": "models", "parameters": [*TIME_RANGE, _query(
                "fair", "true: leave out the runs judged unfair (queued and running ones stay)",
                {"enum": ["true", "false"]})],
            "responses": {"200": _json(ref("Models"), "the models of the comparisons created in the range"),
                          **_errors(400, 401, 503)}}},
        "/api/energy": {"get": {
            "summary": "Energy by component, carbon and methods over an interval", "operationId": "energy",
            "parameters": TIME_RANGE, "responses": {"200": _json(ref("Energy"), "the interval's energy"),
                                                    **_errors(400, 401, 503)}}},
        "/api/grid": {
            "get": {"summary": "The grid's intensity: the yearly average and the rows over time",
                    "operationId": "grid", "responses": {"200": _json(ref("Grid"), "what is in force"),
                                                         **_errors(400, 401)}},
            "post": {"summary": "Feed rows of carbon intensity over time", "operationId": "feedGrid",
                     "requestBody": {"required": True, "content": {
                         JSON: {"schema": ref("GridRows")},
                         "text/csv": {"schema": {"type": "string", "minLength": 1, "description":
                                                 "lines of time,g_per_kwh,renewable_pct"}}}},
                     "responses": {"200": _json(ref("Grid"), "stored, committed, in force"),
                                   **_errors(400, 401, 413, 415, 503, 507)}},
            "delete": {"summary": "Remove the rows that start in [from, to), of the file or the feed",
                       "operationId": "removeGridRows",
                       "parameters": [_query("from", f"the first start removed: {TIME}", TIME_TEXT, required=True),
                                      _query("to", f"the end, not included: {TIME}", TIME_TEXT, required=True)],
                       "responses": {"200": _json(ref("GridRemoval"), "removed, committed, the rest in force"),
                                     **_errors(400, 401, 503)}}},
        "/api/metrics": {"get": {
            "summary": "The history catalog", "operationId": "catalog",
            "responses": {"200": _json(ref("Catalog"), "every metric"), **_errors(400, 401)}}},
        "/api/history": {"get": {
            "summary": "History for charts over the tiers", "operationId": "history",
            "parameters": [_query("metrics", "the metrics", METRICS, required=True),
                           *TIME_RANGE,
                           _query("points", f"at most this many buckets, 1 to {MAX_POINTS}",
                                  {"type": "integer", "minimum": 1, "maximum": MAX_POINTS}),
                           _query("step", "bucket length, a duration such as 15s (instead of points)", DURATION),
                           _query("agg", f"comma-separated: {', '.join(AGGREGATES)} (default avg)",
                                  names_schema(AGGREGATES, "aggregates")),
                           _query("format", "json or csv", {"enum": ["json", "csv"]})],
            "responses": {"200": {"description": "aligned buckets, null where there is no data", "content": {
                JSON: {"schema": ref("History")}, "text/csv": {"schema": {"type": "string"}}}},
                **_errors(400, 401, 503)}}},
        "/api/export": {"get": {
            "summary": "Samples or rollups as Parquet or CSV, units in the column names", "operationId": "export",
            "parameters": [_query("metrics", "the metrics (default every host metric and energy)", METRICS),
                           *TIME_RANGE, _query("tier", "raw, 1m or 1h", {"enum": list(TIERS)}),
                           _query("format", "csv or parquet", {"enum": list(FORMATS)})],
            "responses": {"200": {"description": "the file", "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "contentMediaType":
                                                              "application/vnd.apache.parquet"}}}},
                **_errors(400, 401, 503, 507)}}},
        "/api/export/comparisons": {"get": {
            "summary": "Comparisons as Parquet or CSV: host, figures per item and SCI, phases",
            "operationId": "exportComparisons",
            "parameters": [*TIME_RANGE, _query("format", "csv or parquet", {"enum": list(FORMATS)})],
            "responses": {"200": {"description": "the file", "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "contentMediaType":
                                                              "application/vnd.apache.parquet"}}}},
                **_errors(400, 401, 503, 507)}}},
        "/api/backup": {"get": {
            "summary": "A consistent copy of the database", "operationId": "backup",
            "responses": {"200": {"description": "a DuckDB file", "content": {"application/vnd.duckdb": {
                "schema": {"type": "string", "contentMediaType": "application/vnd.duckdb"}}}},
                **_errors(400, 401, 503, 507)}}},
        "/metrics": {"get": {
            "summary": "Prometheus text format 0.0.4", "operationId": "prometheus",
            "responses": {"200": {"description": "the exposition", "content": {
                "text/plain": {"schema": {"type": "string"}}}}, **_errors(401, 503)}}},
        "/healthz": {"get": {
            "summary": "Sampler and database health (no token needed)", "operationId": "health", "security": [],
            "responses": {"200": _json(ref("Health"), "healthy"), "503": _json(ref("Health"), "unhealthy")}}},
        "/": {"get": {
            "summary": "The page: live figures, history charts, comparisons, energy", "operationId": "page",
            "security": [], "responses": {"200": {"description": "HTML (gzip when accepted, with an ETag)",
                                                  "content": {"text/html": {"schema": {"type": "string"}}}},
                                          "304": {"description": "not modified (If-None-Match)"}}}},
        "/assets/{name}": {"get": {
            "summary": "The page's scripts and styles", "operationId": "asset", "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the asset (gzip when accepted, with an ETag)", "content": {
                "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}}}},
                "304": {"description": "not modified (If-None-Match)"}, **_errors(404)}}},
        "/api/check": {"get": {
            "summary": "Why a figure may read 'not measured' here, and what would measure more",
            "operationId": "check", "responses": {"200": _json({"type": "object", "required": ["reasons", "fixes"],
                                                                "properties": {"reasons": {"type": "object"},
                                                                               "fixes": {"type": "array"}}},
                                                               "reasons by field, fixes"), **_errors(401)}}},
        "/openapi.json": {"get": {
            "summary": "This document", "operationId": "openapi",
            "responses": {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}},
                          **_errors(401)}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tsstats", "version": __version__,
                 "description": "A small, fast, honest metrics service for a workstation: the model-comparison "
                                "dashboard's stats, comparisons, offsets, energy, history and exports."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}] if token_set else [],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "the service's token (`token` or `token_file`); this service has one" if token_set else
            "the service's token (`token` or `token_file`); this service has none, so no operation needs it"}}},
    }
