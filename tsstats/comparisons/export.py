"""Comparisons out, for reading results of many machines together (DuckDB, pandas): one row a comparison,
with the host it ran on and what makes machines comparable (the CPU and GPU models, each component's energy
method, the grid region), its figures in units named in the columns, per item and as SCI, its phases and its
accounting as JSON. Written by DuckDB's COPY (Parquet or CSV) to the path the caller names."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tsstats.core.inputs import InputError, single_values, time_range
from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH
from tsstats.storage.export import copy_chunks
from tsstats.storage.sql import Connection, significant_sql, sql_text

FORMATS = ("parquet", "csv")
PARAMETERS = ("from", "to", "format")


@dataclass(frozen=True)
class ComparisonsExport:
    from_ms: int
    to_ms: int
    format: str
    host: str


def parse_comparisons_export(values: dict[str, str], now_s: float, host: str | None = None) -> ComparisonsExport:
    """``from`` and ``to`` bound the comparisons' creation (default the last 30 days), ``format`` parquet or csv."""
    single = single_values({key: [value] for key, value in values.items()}, PARAMETERS)
    from_ms, to_ms = time_range(single, "-30d", now_s)
    output = single.get("format", "csv")
    if output not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}", field="format")
    return ComparisonsExport(from_ms, to_ms, output, host or socket.gethostname())


def _phases_json(n) -> str:
    """Each comparison's phases as one JSON array of objects, oldest first (a row per comparison that has any)."""
    phase = ("{'id': p.id, 'name': p.name, 'parent': p.parent_id, 'status': p.status, "
             "'started_utc': make_timestamp(p.started_ms * 1000), 'finished_utc': make_timestamp(p.finished_ms "
             f"* 1000), 'energy_J': {n('p.energy_j')}, 'carbon_g': {n('p.carbon_g')}}}")
    # one JSON text per phase, joined: a list() of structs over a few hundred thousand phases ran out of 128 MB
    return f"'[' || string_agg(to_json({phase})::VARCHAR, ',' ORDER BY p.id) || ']'"


def comparisons_sql(query: ComparisonsExport, first_id: int = 0, last_id: int = 2 ** 62) -> str:
    """The SELECT of the comparisons with ids in [first_id, last_id] created in the query's range."""
    listed = (lambda column: column) if query.format == "parquet" else \
        (lambda column: f"array_to_string({column}, ';')")  # CSV: a list as text
    energy = f"c.energy_kwh * {JOULES_PER_KWH!r}"
    carbon = f"c.carbon_kg * {GRAMS_PER_KG!r}"
    n = significant_sql  # each derived figure to the significant digits JSON gives it
    ids = f"BETWEEN {int(first_id)} AND {int(last_id)}"
    columns = [
        f"{sql_text(query.host)} AS host", "c.id", "c.name", f"{listed('c.models')} AS models", "c.status",
        "make_timestamp(c.created_ms * 1000) AS created_utc", "make_timestamp(c.started_ms * 1000) AS started_utc",
        "make_timestamp(c.finished_ms * 1000) AS finished_utc",
        "(c.finished_ms - c.started_ms) / 1000.0 AS duration_s", "c.accuracy AS accuracy_pct", "c.speed",
        "c.latency_ms", "c.error", f"{n(energy)} AS energy_J", f"{n(carbon)} AS carbon_g", "c.items",
        f"{n(f'{energy} / c.items')} AS energy_per_item_J", f"{n(f'{carbon} / c.items')} AS carbon_per_item_g",
        f"{n('c.embodied_g')} AS embodied_g",
        f"{n(f'({carbon} + coalesce(c.embodied_g, 0)) / c.items')} AS sci_g_per_item",
        f"{n(f'c.machine_kwh * {JOULES_PER_KWH!r}')} AS machine_energy_J", f"{listed('c.pids::VARCHAR[]')} AS pids",
        "CASE WHEN c.pids IS NULL THEN 'time_share' ELSE 'process' END AS attribution",
        "c.metadata AS metadata_json", "c.accounting AS accounting_json", "ph.phases_json",
        "c.fair", "CAST(json_extract(c.conditions, '$.unfairReasons') AS VARCHAR) AS unfair_reasons_json",
        "CAST(json_extract(c.conditions, '$.conditions') AS VARCHAR) AS conditions_json",
        "json_extract_string(c.metadata, '$.study') AS study", "c.ended_by",
        # what makes machines comparable, as each run recorded it (NULL for runs recorded before it was)
        "json_extract_string(c.accounting, '$.machine.cpu') AS cpu_model",
        "nullif(array_to_string(from_json(json_extract(c.accounting, '$.machine.gpus'), '[\"VARCHAR\"]'), '; '), '') "
        "AS gpu_model",
        "json_extract_string(c.accounting, '$.methods.cpu') AS cpu_energy_method",
        "json_extract_string(c.accounting, '$.methods.gpu') AS gpu_energy_method",
        "json_extract_string(c.accounting, '$.methods.memory') AS memory_energy_method",
        "json_extract_string(c.accounting, '$.grid.region') AS grid_region"]
    return (f"SELECT {', '.join(columns)} FROM comparisons c LEFT JOIN (SELECT p.comparison_id, "
            f"{_phases_json(n)} AS phases_json FROM phases p WHERE p.comparison_id {ids} GROUP BY p.comparison_id) "
            f"ph ON ph.comparison_id = c.id WHERE c.id {ids} AND c.created_ms >= {int(query.from_ms)} "
            f"AND c.created_ms <= {int(query.to_ms)} ORDER BY c.id")


ROW_BYTES = 1024  # a comparison's fixed columns in either format, with room to spare
PHASE_BYTES = 256
CHUNK_ROWS = 20_000  # a chunk of the export holds at most this many comparisons and phases together


def chunks(con: Connection, query: ComparisonsExport) -> list[tuple[int, int]]:
    """[first id, last id] of each chunk of the export, in order: at most ``CHUNK_ROWS`` comparisons and phases
    each (one comparison with more phases is a chunk of its own)."""
    return con.execute(
        "SELECT min(id), max(id) FROM (SELECT c.id, sum(1 + coalesce(p.n, 0)) OVER (ORDER BY c.id ROWS UNBOUNDED "
        "PRECEDING) - 1 AS before FROM comparisons c LEFT JOIN (SELECT comparison_id, count(*) AS n FROM phases "
        "GROUP BY comparison_id) p ON p.comparison_id = c.id WHERE c.created_ms >= ? AND c.created_ms <= ?) "
        "GROUP BY before // ? ORDER BY 1", [int(query.from_ms), int(query.to_ms), CHUNK_ROWS]).fetchall()


def estimated_bytes(con: Connection, query: ComparisonsExport) -> int:
    """About what the export's file will take: each comparison's fixed columns, its texts and its phases."""
    rows, texts, phases = con.execute(
        "SELECT count(*), coalesce(sum(length(coalesce(metadata, '')) + length(coalesce(accounting, '')) "
        "+ length(coalesce(name, '')) + length(coalesce(error, ''))), 0), coalesce(sum((SELECT count(*) "
        "FROM phases p WHERE p.comparison_id = c.id)), 0) FROM comparisons c WHERE c.created_ms >= ? "
        "AND c.created_ms <= ?", [int(query.from_ms), int(query.to_ms)]).fetchall()[0]
    return int(rows) * ROW_BYTES + 2 * int(texts) + int(phases) * PHASE_BYTES


def write_comparisons(con: Connection, query: ComparisonsExport, path: str) -> int:
    """Write the comparisons to ``path`` (a fresh temporary file) chunk by chunk (``chunks``), so that memory stays
    within the database's limit whatever their number. Returns the rows written."""
    spans = chunks(con, query) or [(0, 0)]
    return copy_chunks(con, [comparisons_sql(query, first_id, last_id) for first_id, last_id in spans], path,
                       query.format)
