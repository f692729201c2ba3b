"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /openapi.json``; a test holds it to the app's
routes both ways, and schemathesis fuzzes the running service from it."""

from __future__ import annotations

from typing import Any

from tsstats import __version__
from tsstats.api.dashboard_json import UNITS
from tsstats.comparisons.phases import MAX_PHASE_NAME, PHASE_FINISHED
from tsstats.comparisons.validation import (
    CREATE_STATUSES,
    MAX_LIMIT,
    MAX_MODEL_NAME,
    MAX_MODELS,
    MAX_NAME,
    MAX_PID,
    MAX_PIDS,
    STATUSES,
)
from tsstats.figures.grid_rows import MAX_FEED_ROWS, MAX_G_PER_KWH
from tsstats.storage.catalog import AGGREGATES
from tsstats.storage.export import FORMATS, TIERS
from tsstats.storage.history import MAX_POINTS

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "a bad parameter or body (the field is named)", 401: "a token is set and missing or wrong",
            404: "no such comparison", 405: "wrong method", 409: "an illegal change of status",
            413: "a body over 1 MiB", 415: "a body that is not application/json",
            503: "not ready, or the database writer did not answer in time"}
    return {str(status): _json(_ref("Error"), text[status]) for status in statuses}


def _query(name: str, description: str, schema: dict[str, Any] | None = None,
           required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


TIME = "RFC 3339 with a zone, Unix seconds, `now`, or relative such as `-15m`, `-7d`"
NUMBER = {"type": "number"}
NULLABLE_NUMBER = {"type": ["number", "null"]}
NULLABLE_TEXT = {"type": ["string", "null"]}


def _stats_schema() -> dict[str, Any]:
    groups = {group: {"type": "object", "required": list(fields), "additionalProperties": False,
                      "properties": {name: {"type": "number", "description": unit} for name, unit in fields.items()}}
              for group, fields in UNITS.items()}
    meta = {"type": "object", "required": ["generatedAt", "sources", "unavailable", "estimated", "units"],
            "properties": {"generatedAt": {"type": "string"}, "unavailable": {"type": "array", "items": {
                "type": "string"}}, "estimated": {"type": "array", "items": {"type": "string"}},
                "units": {"type": "object"}, "sources": {"type": "object"}, "service": {"type": "object"}}}
    return {"type": "object", "required": [*UNITS, "meta"], "properties": {**groups, "meta": meta}}


def _comparison_schema() -> dict[str, Any]:
    return {"type": "object", "required": ["id", "name", "models", "status", "createdAt", "startedAt",
                                            "finishedAt", "accuracy", "speed", "latencyMs", "error", "metadata",
                                            "energyKwh", "carbonKg", "pids", "attribution", "gpuShare",
                                            "machineEnergyKwh", "energyByComponentKwh"],
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                           "models": {"type": "array", "items": {"type": "string"}},
                           "status": {"enum": list(STATUSES)}, "createdAt": {"type": "string"},
                           "startedAt": NULLABLE_TEXT, "finishedAt": NULLABLE_TEXT, "accuracy": NULLABLE_NUMBER,
                           "speed": NULLABLE_NUMBER, "latencyMs": NULLABLE_NUMBER, "error": NULLABLE_TEXT,
                           "metadata": {"type": "object"}, "energyKwh": NULLABLE_NUMBER,
                           "carbonKg": NULLABLE_NUMBER,
                           "pids": {"type": ["array", "null"], "items": {"type": "integer"}},
                           "attribution": {"enum": ["process", "time_share"]},
                           "gpuShare": {"enum": ["utilization", "memory", None]},
                           "machineEnergyKwh": NULLABLE_NUMBER,
                           "energyByComponentKwh": {"type": ["object", "null"], "properties": {
                               "cpu": NUMBER, "gpu": NUMBER, "memory": NUMBER}},
                           "durationS": NULLABLE_NUMBER, "energyJ": NULLABLE_NUMBER, "carbonG": NULLABLE_NUMBER,
                           "items": NULLABLE_NUMBER, "energyPerItemJ": NULLABLE_NUMBER,
                           "carbonPerItemG": NULLABLE_NUMBER, "embodiedG": NULLABLE_NUMBER,
                           "sci": {**NULLABLE_NUMBER, "description": "g CO2e per item: (E x I + M) / R"},
                           "sciIncludes": TEXTS, "unavailable": TEXTS,
                           "methods": {"type": ["object", "null"]}, "estimated": TEXTS,
                           "grid": {"type": ["object", "null"]},
                           "phases": {"type": "array", "items": _ref("Phase")}}}


TEXTS = {"type": "array", "items": {"type": "string"}}
STREAM_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"const": "stats"}, "data": {"type": "string", "contentMediaType": "application/json",
                                          "description": "the body of GET /api/dashboard/stats"}}}
ITEMS = {"type": "number", "exclusiveMinimum": 0, "maximum": 1e15,
         "description": "items the run processes (prompts, images, tokens): the functional unit of SCI"}
PIDS = {"type": "array", "minItems": 1, "maxItems": MAX_PIDS, "items": {"type": "integer", "minimum": 1,
                                                                        "maximum": MAX_PID},
        "description": "the processes doing the comparison's work (their children count too); they must exist"}


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "additionalProperties": False, "properties": {"error": {
        "type": "object", "required": ["status", "message"], "properties": {
            "status": {"type": "integer"}, "message": {"type": "string"}, "field": {"type": "string"}}}}},
    "Stats": _stats_schema(),
    "Comparison": _comparison_schema(),
    "ComparisonList": {"type": "object", "required": ["items", "next"], "properties": {
        "items": {"type": "array", "items": _ref("Comparison")}, "next": NULLABLE_TEXT}},
    "Phase": {"type": "object", "required": ["id", "name", "parent", "status", "startedAt", "finishedAt",
                                             "durationS", "energyJ", "carbonG"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "parent": {"type": ["integer", "null"]},
        "status": {"enum": ["running", *PHASE_FINISHED]}, "startedAt": {"type": "string"},
        "finishedAt": NULLABLE_TEXT, "durationS": NULLABLE_NUMBER, "energyJ": NULLABLE_NUMBER,
        "carbonG": NULLABLE_NUMBER}},
    "NewPhase": {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_PHASE_NAME},
        "parent": {"type": "integer", "minimum": 1, "description": "a running phase of the same comparison"}}},
    "PhaseEnd": {"type": "object", "required": ["status"], "additionalProperties": False, "properties": {
        "status": {"enum": list(PHASE_FINISHED)}}},
    "Models": {"type": "object", "required": ["from", "to", "units", "items"], "properties": {
        "from": {"type": "integer"}, "to": {"type": "integer"}, "units": {"type": "object"},
        "items": {"type": "array", "items": {"type": "object", "required": ["model", "runs"], "properties": {
            "model": {"type": "string"}, "runs": {"type": "object"}, "accuracy": NULLABLE_NUMBER,
            "speed": NULLABLE_NUMBER, "latencyMs": NULLABLE_NUMBER, "energyPerRunJ": NULLABLE_NUMBER,
            "energyPerItemJ": NULLABLE_NUMBER, "carbonPerItemG": NULLABLE_NUMBER,
            "sciPerItemG": NULLABLE_NUMBER}}}}},
    "NewComparison": {"type": "object", "additionalProperties": False, "properties": {
        "items": ITEMS,
        "models": {"type": "array", "maxItems": MAX_MODELS,
                   "items": {"type": "string", "minLength": 1, "maxLength": MAX_MODEL_NAME}},
        "name": {"type": "string", "maxLength": MAX_NAME}, "status": {"enum": list(CREATE_STATUSES)},
        "metadata": {"type": "object", "description": "at most 16 KiB as JSON"}, "pids": PIDS}},
    "ComparisonUpdate": {"type": "object", "required": ["status"], "additionalProperties": False, "properties": {
        "status": {"enum": list(STATUSES)}, "accuracy": {"type": "number", "minimum": 0, "maximum": 100},
        "speed": {"type": "number", "minimum": 0, "maximum": 1e15},
        "latencyMs": {"type": "number", "minimum": 0, "maximum": 1e12,
                      "description": "with a final status only"},
        "error": {"type": "string", "maxLength": 4000}, "pids": PIDS, "items": ITEMS,
        "metadata": {"type": "object", "description": "replaces the metadata; at most 16 KiB as JSON"}}},
    "Offset": {"type": "object", "required": ["id", "kg", "note", "at", "createdAt"], "properties": {
        "id": {"type": "integer"}, "kg": NUMBER, "note": {"type": "string"}, "at": {"type": "string"},
        "createdAt": {"type": "string"}}},
    "OffsetList": {"type": "object", "required": ["items", "totalKg"], "properties": {
        "items": {"type": "array", "items": _ref("Offset")}, "totalKg": NUMBER}},
    "NewOffset": {"type": "object", "required": ["kg"], "additionalProperties": False, "properties": {
        "kg": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9}, "note": {"type": "string", "maxLength": 1000},
        "at": {"type": ["string", "number"], "description": TIME}}},
    "Energy": {"type": "object", "required": ["from", "to", "energyKwh", "carbonKg", "gPerKwh", "methods"],
               "properties": {"from": {"type": "integer"}, "to": {"type": "integer"},
                              "energyKwh": {"type": "object", "required": ["cpu", "gpu", "memory", "total"],
                                            "additionalProperties": NUMBER},
                              "carbonKg": NUMBER, "gPerKwh": NUMBER, "renewablePct": NUMBER,
                              "samplesOutsideGrid": {"type": "integer"}, "pue": NUMBER,
                              "samples": {"type": "integer"},
                              "methods": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "Catalog": {"type": "array", "items": {"type": "object", "required": ["name", "unit", "description", "kind"],
                                           "properties": {"name": {"type": "string"}, "unit": {"type": "string"},
                                                          "description": {"type": "string"},
                                                          "kind": {"enum": ["gauge", "counter"]}}}},
    "History": {"type": "object", "required": ["from", "to", "step", "tier", "timestamps", "series"], "properties": {
        "from": {"type": "integer"}, "to": {"type": "integer"}, "step": {"type": "integer"},
        "tier": {"enum": list(TIERS)}, "timestamps": {"type": "array", "items": {"type": "integer"}},
        "series": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": {
            "type": "array", "items": NULLABLE_NUMBER}}}}},
    "GridRows": {"type": "object", "required": ["rows"], "additionalProperties": False, "properties": {
        "rows": {"type": "array", "minItems": 1, "maxItems": MAX_FEED_ROWS, "items": {
            "type": "object", "required": ["time", "gPerKwh", "renewablePct"], "additionalProperties": False,
            "properties": {"time": {"type": ["string", "number"], "description": "RFC 3339 or Unix seconds"},
                           "gPerKwh": {"type": "number", "minimum": 0, "maximum": MAX_G_PER_KWH},
                           "renewablePct": {"type": "number", "minimum": 0, "maximum": 100}}}}}},
    "Grid": {"type": "object", "required": ["yearlyAverage", "overTime"], "properties": {
        "yearlyAverage": {"type": "object"}, "overTime": {"type": ["object", "null"], "properties": {
            "source": {"type": "string"}, "rows": {"type": "integer"}, "from": {"type": "string"},
            "to": {"type": "string"}}}}},
    "Health": {"type": "object", "required": ["status", "lastSampleAgeS", "database", "problems"], "properties": {
        "status": {"enum": ["ok", "unhealthy"]}, "lastSampleAgeS": NULLABLE_NUMBER,
        "database": {"type": "object"}, "samplesLost": {"type": "integer"},
        "stats": {"type": ["object", "null"]}, "problems": {"type": "array", "items": {"type": "string"}}}},
}
TIME_RANGE = [_query("from", f"start: {TIME}"), _query("to", f"end: {TIME} (default now)")]


def openapi_document() -> dict[str, Any]:
    limit = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
    comparison_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                     "description": "a comparison's id"}
    paths: dict[str, Any] = {
        "/api/dashboard/stats": {"get": {
            "summary": "The dashboard's stats: four objects and meta", "operationId": "stats",
            "responses": {"200": _json(_ref("Stats"), "the stats, no older than update_interval"),
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
                                   _query("before", "the `next` cursor of the previous page")],
                    "responses": {"200": _json(_ref("ComparisonList"), "a page"), **_errors(400, 401)}},
            "post": {"summary": "Create a comparison", "operationId": "createComparison",
                     "requestBody": {"required": True, "content": {JSON: {"schema": _ref("NewComparison")}}},
                     "responses": {"201": {**_json(_ref("Comparison"), "created, committed"), "links": {
                         "GetComparison": {"operationId": "getComparison", "parameters": {"id": "$response.body#/id"}},
                         "UpdateComparison": {"operationId": "updateComparison",
                                              "parameters": {"id": "$response.body#/id"}}}},
                                   **_errors(400, 401, 413, 415, 503)}}},
        "/api/comparisons/{id}": {
            "get": {"summary": "One comparison", "operationId": "getComparison", "parameters": [comparison_id],
                    "responses": {"200": _json(_ref("Comparison"), "the record"), **_errors(401, 404)}},
            "patch": {"summary": "Change a comparison's status and report its results", "operationId":
                      "updateComparison", "parameters": [comparison_id],
                      "requestBody": {"required": True, "content": {JSON: {"schema": _ref("ComparisonUpdate")}}},
                      "responses": {"200": _json(_ref("Comparison"), "updated, committed"),
                                    **_errors(400, 401, 404, 409, 413, 415, 503)}},
            "delete": {"summary": "Remove a comparison and its phases", "operationId": "deleteComparison",
                       "parameters": [comparison_id],
                       "responses": {"204": {"description": "removed, committed"}, **_errors(400, 401, 404, 503)}}},
        "/api/comparisons/{id}/phases": {
            "post": {"summary": "Open a named window inside a running comparison", "operationId": "openPhase",
                     "parameters": [comparison_id],
                     "requestBody": {"required": True, "content": {JSON: {"schema": _ref("NewPhase")}}},
                     "responses": {"201": _json(_ref("Phase"), "opened, committed"),
                                   **_errors(400, 401, 404, 409, 413, 415, 503)}}},
        "/api/comparisons/{id}/phases/{phase}": {
            "patch": {"summary": "Close a phase (and the phases inside it)", "operationId": "closePhase",
                      "parameters": [comparison_id, {"name": "phase", "in": "path", "required": True,
                                                     "schema": {"type": "string"}}],
                      "requestBody": {"required": True, "content": {JSON: {"schema": _ref("PhaseEnd")}}},
                      "responses": {"200": _json(_ref("Phase"), "closed, committed"),
                                    **_errors(400, 401, 404, 409, 413, 415, 503)}}},
        "/api/offsets": {
            "get": {"summary": "Declared carbon offsets", "operationId": "listOffsets",
                    "responses": {"200": _json(_ref("OffsetList"), "every offset"), **_errors(400, 401)}},
            "post": {"summary": "Declare a carbon offset", "operationId": "createOffset",
                     "requestBody": {"required": True, "content": {JSON: {"schema": _ref("NewOffset")}}},
                     "responses": {"201": _json(_ref("Offset"), "created, committed"),
                                   **_errors(400, 401, 413, 415, 503)}}},
        "/api/models": {"get": {
            "summary": "Per model: runs by status, results, energy and carbon per run and per item, SCI",
            "operationId": "models", "parameters": TIME_RANGE,
            "responses": {"200": _json(_ref("Models"), "the models of the comparisons created in the range"),
                          **_errors(400, 401)}}},
        "/api/energy": {"get": {
            "summary": "Energy by component, carbon and methods over an interval", "operationId": "energy",
            "parameters": TIME_RANGE, "responses": {"200": _json(_ref("Energy"), "the interval's energy"),
                                                    **_errors(400, 401)}}},
        "/api/grid": {
            "get": {"summary": "The grid's intensity: the yearly average and the rows over time",
                    "operationId": "grid", "responses": {"200": _json(_ref("Grid"), "what is in force"),
                                                         **_errors(400, 401)}},
            "post": {"summary": "Feed rows of carbon intensity over time", "operationId": "feedGrid",
                     "requestBody": {"required": True, "content": {
                         JSON: {"schema": _ref("GridRows")},
                         "text/csv": {"schema": {"type": "string", "description":
                                                 "lines of time,g_per_kwh,renewable_pct"}}}},
                     "responses": {"200": _json(_ref("Grid"), "stored, committed, in force"),
                                   **_errors(400, 401, 413, 415, 503)}}},
        "/api/metrics": {"get": {
            "summary": "The history catalog", "operationId": "catalog",
            "responses": {"200": _json(_ref("Catalog"), "every metric"), **_errors(400, 401)}}},
        "/api/history": {"get": {
            "summary": "History for charts over the tiers", "operationId": "history",
            "parameters": [_query("metrics", "comma-separated names from /api/metrics", required=True),
                           *TIME_RANGE,
                           _query("points", f"at most this many buckets, 1 to {MAX_POINTS}",
                                  {"type": "integer", "minimum": 1, "maximum": MAX_POINTS}),
                           _query("step", "bucket length, a duration such as 15s (instead of points)"),
                           _query("agg", f"comma-separated: {', '.join(AGGREGATES)}"),
                           _query("format", "json or csv", {"enum": ["json", "csv"]})],
            "responses": {"200": {"description": "aligned buckets, null where there is no data", "content": {
                JSON: {"schema": _ref("History")}, "text/csv": {"schema": {"type": "string"}}}},
                **_errors(400, 401)}}},
        "/api/export": {"get": {
            "summary": "Samples or rollups as Parquet or CSV, units in the column names", "operationId": "export",
            "parameters": [_query("metrics", "comma-separated names (default every host metric and energy)"),
                           *TIME_RANGE, _query("tier", "raw, 1m or 1h", {"enum": list(TIERS)}),
                           _query("format", "csv or parquet", {"enum": list(FORMATS)})],
            "responses": {"200": {"description": "the file", "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "contentMediaType":
                                                              "application/vnd.apache.parquet"}}}},
                **_errors(400, 401, 503)}}},
        "/api/export/comparisons": {"get": {
            "summary": "Comparisons as Parquet or CSV: host, figures per item and SCI, phases",
            "operationId": "exportComparisons",
            "parameters": [*TIME_RANGE, _query("format", "csv or parquet", {"enum": list(FORMATS)})],
            "responses": {"200": {"description": "the file", "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "contentMediaType":
                                                              "application/vnd.apache.parquet"}}}},
                **_errors(400, 401, 503)}}},
        "/api/backup": {"get": {
            "summary": "A consistent copy of the database", "operationId": "backup",
            "responses": {"200": {"description": "a DuckDB file", "content": {"application/vnd.duckdb": {
                "schema": {"type": "string", "contentMediaType": "application/vnd.duckdb"}}}},
                **_errors(400, 401, 503)}}},
        "/metrics": {"get": {
            "summary": "Prometheus text format 0.0.4", "operationId": "prometheus",
            "responses": {"200": {"description": "the exposition", "content": {
                "text/plain": {"schema": {"type": "string"}}}}, **_errors(401, 503)}}},
        "/healthz": {"get": {
            "summary": "Sampler and database health (no token needed)", "operationId": "health", "security": [],
            "responses": {"200": _json(_ref("Health"), "healthy"), "503": _json(_ref("Health"), "unhealthy")}}},
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
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer", "description": "needed when a token is set"}}},
    }
