"""The one definition of a sample row: each field's ring column, stored column, scale and unit.

The sampler's ring holds float64 values in the field's unit (NaN for no reading); the database stores
``round(value x scale)`` as an integer of ``sql_type`` (NULL for NaN), bit-packed by DuckDB. Everything that
touches a row goes through these tables: the ring's columns, the appender, the rounding of figures computed
from rows still in memory (so they equal what will be stored), and the SQL that reads stored values back in
the field's unit. ``schema.sql`` declares the same columns; a test checks it against these tables.

``BatchWriter``: batches of ring columns into a table, as the scaled integers the row definition stores (writer
thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tsstats.storage.sql import Connection, first


@dataclass(frozen=True)
class Field:
    name: str  # ring column, and the key of a tick's row
    stored: str  # column of the table
    scale: float  # stored integer = round(value x scale)
    unit: str  # unit of the ring value
    sql_type: str  # type of the stored column


@dataclass(frozen=True)
class RowSpec:
    table: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields)

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)

    def row(self, values: dict[str, float]) -> list[float]:
        """A ring row from values by field name; a field not given is NaN (no reading)."""
        return [values.get(name, np.nan) for name in self.names]

    def to_stored(self, columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The integers the table stores for ring columns, as float64 with NaN for NULL, by stored name."""
        return {field.stored: np.round(columns[field.name] * field.scale) for field in self.fields}

    def as_stored(self, name: str, values: np.ndarray) -> np.ndarray:
        """Ring values rounded as the table will keep them, in the field's unit; NaN stays NaN."""
        field = self.field(name)
        return np.round(np.asarray(values, dtype=float) * field.scale) / field.scale

    def sql(self, name: str) -> str:
        """SQL giving a stored column back in the field's unit."""
        field = self.field(name)
        return field.stored if field.scale == 1 else f"({field.stored} / {float(field.scale)!r})"


HOST_ROW = RowSpec("samples", (
    Field("ts_ms", "ts_ms", 1, "epoch ms", "BIGINT"),
    Field("interval_s", "interval_ms", 1000, "s", "INTEGER"),
    Field("cpu_pct", "cpu_pm", 10, "%", "SMALLINT"),
    Field("mem_pct", "mem_pm", 10, "%", "SMALLINT"),
    Field("load1", "load1_c", 100, "load", "INTEGER"),
    Field("logical_cpus", "logical_cpus", 1, "count", "SMALLINT"),
    Field("tcp_estab", "tcp_estab", 1, "count", "INTEGER"),
    Field("rx_bps", "rx_bps", 1, "B/s", "BIGINT"),
    Field("tx_bps", "tx_bps", 1, "B/s", "BIGINT"),
    Field("gpu_pct", "gpu_pm", 10, "%", "SMALLINT"),
    Field("latency_ms", "latency_us", 1000, "ms", "INTEGER"),
    Field("cpu_j", "cpu_mj", 1000, "J", "INTEGER"),
    Field("gpu_j", "gpu_mj", 1000, "J", "INTEGER"),
    Field("gpu_idle_j", "gpu_idle_mj", 1000, "J", "INTEGER"),
    Field("mem_j", "mem_mj", 1000, "J", "INTEGER"),
    Field("methods", "methods", 1, "bits", "UTINYINT"),
    # schema version 5: the conditions of the last second (sampling.reading.condition_values)
    Field("cpu_user_pct", "cpu_user_pm", 10, "%", "SMALLINT"),
    Field("cpu_system_pct", "cpu_system_pm", 10, "%", "SMALLINT"),
    Field("cpu_iowait_pct", "cpu_iowait_pm", 10, "%", "SMALLINT"),
    Field("cpu_steal_pct", "cpu_steal_pm", 10, "%", "SMALLINT"),
    Field("psi_cpu_pct", "psi_cpu_c", 100, "%", "SMALLINT"),
    Field("psi_memory_pct", "psi_memory_c", 100, "%", "SMALLINT"),
    Field("psi_io_pct", "psi_io_c", 100, "%", "SMALLINT"),
    Field("swap_used_bytes", "swap_used_mb", 1 / 1048576, "B", "INTEGER"),
    Field("swap_in_bps", "swap_in_bps", 1, "B/s", "BIGINT"),
    Field("swap_out_bps", "swap_out_bps", 1, "B/s", "BIGINT"),
    Field("disk_read_bps", "disk_read_bps", 1, "B/s", "BIGINT"),
    Field("disk_write_bps", "disk_write_bps", 1, "B/s", "BIGINT"),
    Field("disk_read_ops", "disk_read_ops_c", 100, "ops/s", "INTEGER"),
    Field("disk_write_ops", "disk_write_ops_c", 100, "ops/s", "INTEGER"),
    Field("fs_used_pct", "fs_used_pm", 10, "%", "SMALLINT"),
    Field("cpu_temp_c", "cpu_temp_dc", 10, "°C", "SMALLINT"),
    Field("cpu_core_temp_c", "cpu_core_temp_dc", 10, "°C", "SMALLINT"),
    Field("cpu_freq_mhz", "cpu_freq_mhz", 1, "MHz", "INTEGER"),
    Field("cpu_freq_min_mhz", "cpu_freq_min_mhz", 1, "MHz", "INTEGER"),
    Field("cpu_freq_pct", "cpu_freq_pm", 10, "%", "SMALLINT"),
    Field("cpu_throttle_eps", "cpu_throttle_c", 100, "events/s", "INTEGER"),
    Field("cpu_core_max_pct", "cpu_core_max_pm", 10, "%", "SMALLINT"),
))
GPU_ROW = RowSpec("gpu_samples", (
    Field("ts_ms", "ts_ms", 1, "epoch ms", "BIGINT"),
    Field("gpu", "gpu", 1, "index", "UTINYINT"),
    Field("util_pct", "util_pm", 10, "%", "SMALLINT"),
    Field("mem_used_bytes", "mem_used_mb", 1 / 1048576, "B", "INTEGER"),
    Field("power_w", "power_mw", 1000, "W", "INTEGER"),
    Field("temp_c", "temp_c", 1, "°C", "SMALLINT"),
    # schema version 5: read once a second (sources.gpu.GpuConditions)
    Field("sm_clock_mhz", "sm_clock_mhz", 1, "MHz", "INTEGER"),
    Field("memory_clock_mhz", "memory_clock_mhz", 1, "MHz", "INTEGER"),
    Field("fan_pct", "fan_pct", 1, "%", "SMALLINT"),
    Field("throttle_mask", "throttle_mask", 1, "bits", "INTEGER"),
))


def empty_columns(spec: RowSpec, rows: int) -> dict[str, np.ndarray]:
    """Ring columns of ``rows`` rows with no readings (NaN), to be filled by field name."""
    return {name: np.full(rows, np.nan) for name in spec.names}


APPENDER_MAX_ROWS = 2000


def python_rows(scaled: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    """Rows of Python ints (None for NULL) for the appender."""
    columns = []
    for array in scaled.values():
        missing = np.isnan(array)
        values = np.where(missing, 0, array).astype(np.int64).tolist()
        if missing.any():
            values = [None if gap else value for value, gap in zip(values, missing.tolist(), strict=True)]
        columns.append(values)
    return list(zip(*columns, strict=True))


class BatchWriter:
    """Inserts batches through the writing connection: small ones through a kept appender per table, large ones
    through a scan of the numpy arrays."""

    def __init__(self, con: Connection):
        self.con = con
        self._appenders: dict[str, Any] = {}

    def forget(self) -> None:
        """Drop the kept appenders (after a failed write, which they may still hold, or a reopen)."""
        self._appenders.clear()

    def insert(self, spec: RowSpec, columns: dict[str, np.ndarray]) -> None:
        """Insert float64 ring columns into the spec's table in one statement (inside a transaction)."""
        table = spec.table
        scaled = spec.to_stored(columns)
        rows = len(next(iter(scaled.values())))
        if not rows:
            return
        if rows <= APPENDER_MAX_ROWS:
            appender = self._appenders.get(table)
            if appender is None:
                appender = self._appenders[table] = self.con.appender(table, columns=list(scaled))
            try:
                appender.append_rows(python_rows(scaled))
                appender.flush()
            except Exception:
                appender.clear()
                raise
            return
        name = f"batch_{table}"
        self.con.register(name, scaled)
        try:
            targets = ", ".join(scaled)
            self.con.execute(f"INSERT INTO {table} ({targets}) SELECT {targets} FROM {name}")
        finally:
            self.con.unregister(name)


def newest_sample_ms(con: Connection) -> float | None:
    """The time of the newest stored sample (epoch ms), None in an empty file."""
    newest = first(con.execute("SELECT max(ts_ms) FROM samples").fetchall())[0]
    return float(newest) if newest is not None else None
