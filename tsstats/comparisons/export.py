"""Comparisons out, for reading results of many machines together (DuckDB, pandas): one row a comparison,
with the host it ran on, its figures in units named in the columns, per item and as SCI, its phases and its
accounting as JSON. Written by DuckDB's COPY (Parquet or CSV) to the path the caller names."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from tsstats.core.inputs import InputError, single_values, time_range
from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH
from tsstats.storage.sql import Connection, significant_sql

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


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def comparisons_sql(query: ComparisonsExport) -> str:
    listed = (lambda column: column) if query.format == "parquet" else \
        (lambda column: f"array_to_string({column}, ';')")  # CSV: a list as text
    energy = f"c.energy_kwh * {JOULES_PER_KWH!r}"
    carbon = f"c.carbon_kg * {GRAMS_PER_KG!r}"
    n = significant_sql  # each derived figure to the significant digits JSON gives it
    phases = ("(SELECT to_json(list({'id': p.id, 'name': p.name, 'parent': p.parent_id, 'status': p.status, "
              "'started_utc': make_timestamp(p.started_ms * 1000), 'finished_utc': make_timestamp(p.finished_ms "
              f"* 1000), 'energy_J': {n('p.energy_j')}, 'carbon_g': {n('p.carbon_g')}}} ORDER BY p.id)) "
              "FROM phases p WHERE p.comparison_id = c.id)")
    columns = [
        f"{_text(query.host)} AS host", "c.id", "c.name", f"{listed('c.models')} AS models", "c.status",
        "make_timestamp(c.created_ms * 1000) AS created_utc", "make_timestamp(c.started_ms * 1000) AS started_utc",
        "make_timestamp(c.finished_ms * 1000) AS finished_utc",
        "(c.finished_ms - c.started_ms) / 1000.0 AS duration_s", "c.accuracy AS accuracy_pct", "c.speed",
        "c.latency_ms", "c.error", f"{n(energy)} AS energy_J", f"{n(carbon)} AS carbon_g", "c.items",
        f"{n(f'{energy} / c.items')} AS energy_per_item_J", f"{n(f'{carbon} / c.items')} AS carbon_per_item_g",
        f"{n('c.embodied_g')} AS embodied_g",
        f"{n(f'({carbon} + coalesce(c.embodied_g, 0)) / c.items')} AS sci_g_per_item",
        f"{n(f'c.machine_kwh * {JOULES_PER_KWH!r}')} AS machine_energy_J", f"{listed('c.pids::VARCHAR[]')} AS pids",
        "CASE WHEN c.pids IS NULL THEN 'time_share' ELSE 'process' END AS attribution",
        "c.metadata AS metadata_json", "c.accounting AS accounting_json", f"{phases} AS phases_json"]
    return (f"SELECT {', '.join(columns)} FROM comparisons c WHERE c.created_ms >= {int(query.from_ms)} "
            f"AND c.created_ms <= {int(query.to_ms)} ORDER BY c.id")


ROW_BYTES = 1024  # a comparison's fixed columns in either format, with room to spare
PHASE_BYTES = 256


def estimated_bytes(con: Connection, query: ComparisonsExport) -> int:
    """About what the export's file will take: each comparison's fixed columns, its texts and its phases."""
    rows, texts, phases = con.execute(
        "SELECT count(*), coalesce(sum(length(coalesce(metadata, '')) + length(coalesce(accounting, '')) "
        "+ length(coalesce(name, '')) + length(coalesce(error, ''))), 0), coalesce(sum((SELECT count(*) "
        "FROM phases p WHERE p.comparison_id = c.id)), 0) FROM comparisons c WHERE c.created_ms >= ? "
        "AND c.created_ms <= ?", [int(query.from_ms), int(query.to_ms)]).fetchall()[0]
    return int(rows) * ROW_BYTES + 2 * int(texts) + int(phases) * PHASE_BYTES


def write_comparisons(con: Connection, query: ComparisonsExport, path: str) -> int:
    """COPY the comparisons to ``path`` (a fresh temporary file); returns the rows written."""
    options = "FORMAT parquet, COMPRESSION zstd" if query.format == "parquet" else "FORMAT csv, HEADER"
    literal = path.replace("'", "''")
    rows = con.execute(f"COPY ({comparisons_sql(query)}) TO '{literal}' ({options})").fetchall()
    return int(rows[0][0]) if rows else 0
