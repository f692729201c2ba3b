"""The schemas of the OpenAPI document: the components, and the exact forms of the parameters that
several operations share (times, durations, metric names, ids)."""

from __future__ import annotations

from typing import Any

from tsstats.api.dashboard_json import UNITS
from tsstats.comparisons.phases import MAX_PHASE_NAME, PHASE_FINISHED
from tsstats.comparisons.validation import (
    CREATE_STATUSES,
    MAX_ITEMS,
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
from tsstats.storage.catalog import ENERGY_METRICS, HOST_METRICS
from tsstats.storage.export import TIERS

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
