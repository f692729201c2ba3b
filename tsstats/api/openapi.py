"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /openapi.json``; a test holds it to the app's routes
both ways, and schemathesis fuzzes the running service from it. First the schemas (the components, and the exact
forms of the parameters that several operations share: times, durations, metric names, ids), then the operations.
"""

from __future__ import annotations

from typing import Any

from tsstats import __version__
from tsstats.api.dashboard_json import UNITS
from tsstats.comparisons.phases import MAX_PHASE_NAME, PHASE_FINISHED
from tsstats.comparisons.validation import (
    CREATE_STATUSES,
    MAX_ITEMS,
    MAX_LIMIT,
    MAX_MODEL_NAME,
    MAX_MODELS,
    MAX_NAME,
    MAX_PID,
    MAX_PIDS,
    MIN_ITEMS,
    STATUSES,
)
from tsstats.core.inputs import (
    ABSOLUTE_TIME_PATTERN,
    LATEST_UNIX_SECONDS,
    TIME_PATTERN,
    TIME_RANGE_TEXT,
)
from tsstats.figures.grid import MAX_FEED_ROWS, MAX_G_PER_KWH
from tsstats.storage.catalog import AGGREGATES, ENERGY_METRICS, HOST_METRICS
from tsstats.storage.export import FORMATS, TIERS
from tsstats.storage.history import MAX_POINTS

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _null_when_absent(schema: dict[str, Any]) -> dict[str, Any]:
    """A request body's object schema in which each optional field may also be ``null``: the service reads a
    null as the field left out."""
    required = set(schema.get("required", ()))
    properties = {name: prop if name in required else {"anyOf": [prop, {"type": "null"}]}
                  for name, prop in schema["properties"].items()}
    return {**schema, "properties": properties}


def names_schema(values: Any, description: str) -> dict[str, Any]:
    return {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(values)},
            "description": description}


TIME = (f"RFC 3339 with a zone, Unix seconds, `now`, or relative such as `-15m`, `-7d`, from {TIME_RANGE_TEXT} "
        "(the pattern spells RFC 3339 in UTC; any offset is accepted)")
TIME_TEXT = {"type": "string", "pattern": TIME_PATTERN}
UNIX_SECONDS = {"type": "number", "minimum": 0, "maximum": LATEST_UNIX_SECONDS}
DURATION = {"type": "string", "pattern": "^[0-9]{1,6}(\\.[0-9]{1,3})?(ms|s|m|h|d|w|y)?$",
            "description": "a number with a unit (ms, s, m, h, d, w, y; seconds without one), at least 1ms"}
GPU_NAMES = "and, for each GPU that has samples, `gpu<N>_<metric>` (GET /api/metrics lists them)"
METRICS = names_schema([metric.name for metric in HOST_METRICS + ENERGY_METRICS],
                 f"comma-separated names from GET /api/metrics: these {GPU_NAMES}")
ID = {"type": "integer", "minimum": 0, "maximum": 10 ** 18 - 1}  # 18 digits at most (parse_comparison_id)
CURSOR = {"type": "string", "pattern": "^[0-9]{1,18}$"}
NUMBER = {"type": "number"}
NULLABLE_NUMBER = {"type": ["number", "null"]}
BY_COMPONENT = {"type": ["object", "null"], "properties": {"cpu": NUMBER, "gpu": NUMBER, "memory": NUMBER}}
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


ENERGY_PARTS = {"type": "object", "required": ["cpu", "gpu", "memory", "total"], "additionalProperties": NUMBER}


def deprecated(schema: dict[str, Any], instead: str) -> dict[str, Any]:
    """A field kept for older clients, in the unit its name says; ``instead`` is the field to read."""
    return {**schema, "deprecated": True, "description": f"deprecated: read {instead}"}


def _comparison_schema() -> dict[str, Any]:
    return {"type": "object", "required": ["id", "name", "models", "status", "createdAt", "startedAt",
                                            "finishedAt", "accuracy", "speed", "latencyMs", "error", "metadata",
                                            "energyKwh", "carbonKg", "pids", "attribution", "gpuShare",
                                            "machineEnergyKwh", "energyByComponentKwh", "energyJ", "carbonG",
                                            "machineEnergyJ", "energyByComponentJ"],
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                           "models": {"type": "array", "items": {"type": "string"}},
                           "status": {"enum": list(STATUSES)}, "createdAt": {"type": "string"},
                           "startedAt": NULLABLE_TEXT, "finishedAt": NULLABLE_TEXT, "accuracy": NULLABLE_NUMBER,
                           "speed": NULLABLE_NUMBER, "latencyMs": NULLABLE_NUMBER, "error": NULLABLE_TEXT,
                           "metadata": {"type": "object"},
                           "energyKwh": deprecated(NULLABLE_NUMBER, "energyJ"),
                           "carbonKg": deprecated(NULLABLE_NUMBER, "carbonG"),
                           "pids": {"type": ["array", "null"], "items": {"type": "integer"}},
                           "attribution": {"enum": ["process", "time_share"]},
                           "gpuShare": {"enum": ["utilization", "memory", None]},
                           "machineEnergyJ": NULLABLE_NUMBER,
                           "energyByComponentJ": BY_COMPONENT,
                           "machineEnergyKwh": deprecated(NULLABLE_NUMBER, "machineEnergyJ"),
                           "energyByComponentKwh": deprecated(BY_COMPONENT, "energyByComponentJ"),
                           "durationS": NULLABLE_NUMBER, "energyJ": NULLABLE_NUMBER, "carbonG": NULLABLE_NUMBER,
                           "items": NULLABLE_NUMBER, "energyPerItemJ": NULLABLE_NUMBER,
                           "carbonPerItemG": NULLABLE_NUMBER, "embodiedG": NULLABLE_NUMBER,
                           "sci": {**NULLABLE_NUMBER, "description": "g CO2e per item: (E x I + M) / R"},
                           "sciIncludes": TEXTS, "unavailable": TEXTS,
                           "methods": {"type": ["object", "null"]}, "estimated": TEXTS,
                           "grid": {"type": ["object", "null"]},
                           "measurer": {"type": ["object", "null"], "description": "what tsstats itself used of "
                                        "the machine's energy over the run's window (energyJ, machineEnergyJ, "
                                        "sharePct); null for a window opened before a restart", "properties": {
                                            "energyJ": NUMBER, "machineEnergyJ": NUMBER,
                                            "sharePct": NULLABLE_NUMBER}},
                           **JUDGED,
                           "endedBy": {"enum": ["client", "service", None],
                                       "description": "who gave the final status: the client's report, or the "
                                                      "service when its processes exited and nobody reported "
                                                      "within report_grace (a report still replaces that)"},
                           "processesExitedAt": {**NULLABLE_TEXT, "description": "when every process it names "
                                                 "was seen gone: its measured window ends there"},
                           "phases": {"type": "array", "items": ref("Phase")}}}


TEXTS = {"type": "array", "items": {"type": "string"}}
JUDGED = {  # a run's or a phase's conditions once it has ended, and the verdict (docs/conditions.md)
    "conditions": {"type": ["object", "null"], "description": "the conditions once it has ended", "properties": {
        **{name: NULLABLE_NUMBER for name in (
            "peakCpuTemperatureC", "peakGpuTemperatureC", "cpuThrottledS", "cpuFrequencyPct", "swapInBytes",
            "stealPct", "contentionPct", "cpuWaitPct", "cpuDeniedPct", "serviceCpuPct", "gpuThrottledS",
            "peakGpuMemoryMiB", "gpuContentionPct")},
        "gpuThrottleReasons": TEXTS, "gpuContentionByGpu": {"type": "object"}, "unavailable": TEXTS,
        "limits": {"type": "object"}}},
    "fair": {"type": ["boolean", "null"], "description": "whether its conditions made it a fair one to compare; "
             "null until it has ended"},
    "unfairReasons": TEXTS,
}
STREAM_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"const": "stats"}, "data": {"type": "string", "contentMediaType": "application/json",
                                          "description": "the body of GET /api/dashboard/stats"}}}
ITEMS = {"type": "number", "minimum": MIN_ITEMS, "maximum": MAX_ITEMS,
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
        "items": {"type": "array", "items": ref("Comparison")}, "next": NULLABLE_TEXT}},
    "Phase": {"type": "object", "required": ["id", "name", "parent", "status", "startedAt", "finishedAt",
                                             "durationS", "energyJ", "carbonG"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "parent": {"type": ["integer", "null"]},
        "status": {"enum": ["running", *PHASE_FINISHED]}, "startedAt": {"type": "string"},
        "finishedAt": NULLABLE_TEXT, "durationS": NULLABLE_NUMBER, "energyJ": NULLABLE_NUMBER,
        "carbonG": NULLABLE_NUMBER, **JUDGED}},
    "NewPhase": _null_when_absent({"type": "object", "required": ["name"], "additionalProperties": False,
                                   "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_PHASE_NAME},
        "parent": {"type": "integer", "minimum": 1, "description": "a running phase of the same comparison"}}}),
    "PhaseEnd": {"type": "object", "required": ["status"], "additionalProperties": False, "properties": {
        "status": {"enum": list(PHASE_FINISHED)}}},
    "ConditionsNow": {"type": "object", "required": [
        "takenAt", "takenAtMs", "windowS", "cpuPct", "contentionPct", "serviceCpuPct", "cpuTemperatureC",
        "gpuTemperatureC", "quiet", "limits", "unavailable"], "properties": {
        "takenAt": {"type": "string"}, "takenAtMs": {"type": "integer"}, "windowS": {"type": "number"},
        **{name: NULLABLE_NUMBER for name in ("cpuPct", "contentionPct", "serviceCpuPct", "cpuTemperatureC")},
        "gpuTemperatureC": {"type": "object", "additionalProperties": NULLABLE_NUMBER},
        "quiet": {"type": "boolean"}, "limits": {"type": "object"}, "unavailable": TEXTS}},
    "Studies": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": {
        "type": "object", "required": ["id", "trials", "warmups", "firstAt", "lastAt", "contenders"], "properties": {
            "id": {"type": "string"}, "trials": {"type": "integer"}, "warmups": {"type": "integer"},
            "firstAt": {"type": "string"}, "lastAt": {"type": "string"},
            "contenders": {"type": "array", "items": {"type": "string"}}}}}}},
    "Study": {"type": "object", "required": ["study", "commands", "ratios", "report"], "properties": {
        "study": {"type": "string"}, "stopped": {"type": "string"}, "energyUnit": {"type": "string"},
        "timeUnit": {"type": "string"}, "items": {"type": ["string", "null"]}, "seed": {"type": ["integer", "null"]},
        "commands": {"type": "array", "items": {"type": "object", "required": ["name", "time", "energy", "trials",
                                                                              "excluded"]}},
        "idleBaseline": {"type": ["object", "null"]}, "neverQuiet": {"type": ["string", "null"]},
        "measurer": {"type": ["object", "null"], "description": "what tsstats itself used of the machine's energy "
                     "over the trials' windows (energyJ, machineEnergyJ, sharePct, trials)"},
        "ratios": {"type": "object", "required": ["energy", "energyNetOfIdle", "time"], "properties": {
            "energy": {"type": "array", "items": {"type": "object"}},
            "energyNetOfIdle": {"type": "array", "items": {"type": "object"}},
            "time": {"type": "array", "items": {"type": "object"}}}},
        "report": {"type": "array", "items": {"type": "string"}}}},
    "Models": {"type": "object", "required": ["from", "to", "units", "models", "omitted", "items"], "properties": {
        "fairOnly": {"type": "boolean"},
        "from": {"type": "integer"}, "to": {"type": "integer"}, "units": {"type": "object"},
        "models": {"type": "integer", "description": "models with comparisons in the range"},
        "omitted": {"type": "integer", "description": "of them, not listed (beyond 1,000)"},
        "items": {"type": "array", "items": {"type": "object", "required": ["model", "runs", "spread", "pareto"],
                                             "properties": {
            "model": {"type": "string"}, "runs": {"type": "object"}, "accuracy": NULLABLE_NUMBER,
            "pareto": {"type": ["boolean", "null"], "description": "on the front of accuracy against energy per "
                       "item: no other model listed is both at least as accurate and at most as costly (and better "
                       "in one); null without either figure"},
            "speed": NULLABLE_NUMBER, "latencyMs": NULLABLE_NUMBER, "energyPerRunJ": NULLABLE_NUMBER,
            "energyPerItemJ": NULLABLE_NUMBER, "carbonPerItemG": NULLABLE_NUMBER,
            "sciPerItemG": NULLABLE_NUMBER,
            "spread": {"type": "object", "description": "per figure, over the runs' own values: n, mean, stdev "
                                                        "and the mean's 95 % interval (Student's t)",
                       "additionalProperties": {"type": "object", "required": ["n", "mean", "stdev", "ci95Low",
                                                                                "ci95High"],
                                                "properties": {"n": {"type": "integer"}, "mean": NULLABLE_NUMBER,
                                                               "stdev": NULLABLE_NUMBER,
                                                               "ci95Low": NULLABLE_NUMBER,
                                                               "ci95High": NULLABLE_NUMBER}}}}}}}},
    "NewComparison": _null_when_absent({"type": "object", "additionalProperties": False, "properties": {
        "items": ITEMS,
        "models": {"type": "array", "maxItems": MAX_MODELS,
                   "items": {"type": "string", "minLength": 1, "maxLength": MAX_MODEL_NAME}},
        "name": {"type": "string", "maxLength": MAX_NAME}, "status": {"enum": list(CREATE_STATUSES)},
        "metadata": {"type": "object", "description": "at most 16 KiB as JSON"}, "pids": PIDS}}),
    "ComparisonUpdate": _null_when_absent({"type": "object", "required": ["status"], "additionalProperties": False,
                                           "properties": {
        "status": {"enum": list(STATUSES)}, "accuracy": {"type": "number", "minimum": 0, "maximum": 100},
        "speed": {"type": "number", "minimum": 0, "maximum": 1e15},
        "latencyMs": {"type": "number", "minimum": 0, "maximum": 1e12,
                      "description": "with a final status only"},
        "error": {"type": "string", "maxLength": 4000}, "pids": PIDS, "items": ITEMS,
        "metadata": {"type": "object", "description": "replaces the metadata; at most 16 KiB as JSON"}}}),
    "Offset": {"type": "object", "required": ["id", "carbonG", "kg", "note", "at", "createdAt"], "properties": {
        "id": {"type": "integer"}, "carbonG": NUMBER, "kg": {**NUMBER, "description": "as declared (carbonG: grams)"},
        "note": {"type": "string"}, "at": {"type": "string"}, "createdAt": {"type": "string"}}},
    "OffsetList": {"type": "object", "required": ["items", "next", "totalG", "totalKg"], "properties": {
        "items": {"type": "array", "items": ref("Offset")}, "next": NULLABLE_TEXT, "totalG": NUMBER,
        "totalKg": deprecated(NUMBER, "totalG")}},
    "NewOffset": _null_when_absent({"type": "object", "required": ["kg"], "additionalProperties": False, "properties": {
        "kg": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9}, "note": {"type": "string", "maxLength": 1000},
        "at": {"anyOf": [TIME_TEXT, UNIX_SECONDS], "description": TIME}}}),
    "Energy": {"type": "object", "required": ["from", "to", "energyJ", "carbonG", "energyKwh", "carbonKg", "gPerKwh",
                                              "methods"],
               "properties": {"from": {"type": "integer"}, "to": {"type": "integer"},
                              "energyJ": ENERGY_PARTS,
                              "carbonG": NUMBER,
                              "energyKwh": deprecated(ENERGY_PARTS, "energyJ"),
                              "carbonKg": deprecated(NUMBER, "carbonG"), "gPerKwh": NUMBER, "renewablePct": NUMBER,
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
            "properties": {"time": {"anyOf": [{"type": "string", "pattern": ABSOLUTE_TIME_PATTERN}, UNIX_SECONDS],
                                    "description": f"RFC 3339 or Unix seconds, from {TIME_RANGE_TEXT}"},
                           "gPerKwh": {"type": "number", "minimum": 0, "maximum": MAX_G_PER_KWH},
                           "renewablePct": {"type": "number", "minimum": 0, "maximum": 100}}}}}},
    "Grid": {"type": "object", "required": ["yearlyAverage", "overTime"], "properties": {
        "yearlyAverage": {"type": "object"}, "overTime": {"type": ["object", "null"], "properties": {
            "source": {"type": "string"}, "rows": {"type": "integer"}, "from": {"type": "string"},
            "to": {"type": "string"}}}}},
    "GridRemoval": {"allOf": [ref("Grid"), {
        "type": "object", "required": ["removed"], "properties": {"removed": {"type": "integer", "minimum": 0}}}]},
    "Health": {"type": "object", "required": ["status", "lastSampleAgeS", "database", "problems"], "properties": {
        "status": {"enum": ["ok", "unhealthy"]}, "lastSampleAgeS": NULLABLE_NUMBER,
        "database": {"type": "object"}, "samplesLost": {"type": "integer"},
        "stats": {"type": ["object", "null"]}, "problems": {"type": "array", "items": {"type": "string"}}}},
}


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
