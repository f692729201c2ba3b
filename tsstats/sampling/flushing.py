"""Flushing: the ring's pending rows to the database in one transaction with the rollup buckets that closed,
the sampling gaps found and the first sample's time; then, once committed, the energy ledger, the rollup
state and the availability record. A failed write changes none of them and keeps the rows for the next try.

``Availability``: when sampling began and the gaps since, the uptime figure's inputs (sampler thread), kept
current by each flush.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tsstats.figures import formulas
from tsstats.sampling.energy import EnergyLedger
from tsstats.sampling.ring import Ring
from tsstats.storage.rollups import Rollups
from tsstats.storage.rows import GPU_ROW, HOST_ROW
from tsstats.storage.sql import Connection
from tsstats.storage.store import Store

log = logging.getLogger("tsstats.flushing")


def write_batch(store: Store, rollups: Rollups, columns: dict[str, np.ndarray],
                gpu_columns: dict[str, np.ndarray] | None = None, gaps: np.ndarray | None = None,
                meta: dict[str, str] | None = None) -> None:
    """The one write path of samples (the sampler's flushes and ``tsstats synth``): one transaction with the
    samples, per-GPU samples, outages, ``schema_meta`` rows (the first sample's time, the clock segment), and
    the rollup buckets that closed; the rollup state advances once it has committed. When only samples are
    due, their single appender flush commits on its own (the same transaction, cheaper)."""
    gpu_rows = len(gpu_columns["ts_ms"]) if gpu_columns else 0
    gaps = gaps if gaps is not None else np.empty((0, 2))
    last_ts = float(columns["ts_ms"][-1])
    if not (len(gaps) or gpu_rows or meta or rollups.due(last_ts)):
        store.append_rows(HOST_ROW, columns)
        return

    def write(con: Connection) -> object:
        store.insert_rows(HOST_ROW, columns)
        if gpu_columns is not None and gpu_rows:
            store.insert_rows(GPU_ROW, gpu_columns)
        for start, end in gaps:
            con.execute("INSERT INTO outages VALUES (?, ?)", [int(start), int(end)])
        for key, value in (meta or {}).items():
            con.execute("INSERT OR REPLACE INTO schema_meta VALUES (?, ?)", [key, value])
        return rollups.close_buckets(con, last_ts, float(columns["ts_ms"][0]))

    rollups.commit(store.transaction(write))


@dataclass
class FlushHealth:
    ok: bool = True
    error: str = ""
    lost_rows: int = 0
    flushes: int = 0


class Flusher:
    """Writes the ring's pending rows (writer thread only)."""

    def __init__(self, store: Store, rollups: Rollups, ring: Ring, gpu_ring: Ring, ledger: EnergyLedger,
                 availability: Availability, max_gap_ms: float,
                 unsaved_segment: Callable[[], tuple[str, str] | None] = lambda: None,
                 segment_saved: Callable[[tuple[str, str]], None] = lambda row: None):
        """``unsaved_segment()``: the clock's segment as a ``schema_meta`` row when it changed since it was saved,
        written with the samples; ``segment_saved(row)`` once it is committed."""
        self.store = store
        self.rollups = rollups
        self.ring = ring
        self.gpu_ring = gpu_ring
        self.ledger = ledger
        self.availability = availability
        self.unsaved_segment, self.segment_saved = unsaved_segment, segment_saved
        self.max_gap_ms = max_gap_ms  # a longer gap between samples is an outage
        self.last_flushed_ms: float | None = None
        self.restarted = True  # the first flush of a run: the gap since the last stored sample was a restart
        self.health = FlushHealth()

    def flush(self) -> None:
        rows, upto, lost = self.ring.unflushed()
        gpu_rows, gpu_upto, _ = self.gpu_ring.unflushed()
        if lost:
            self.health.lost_rows += lost
            log.warning("%d samples were overwritten before they could be written", lost)
        if not len(rows):
            return
        columns = self.ring.columns_of(rows)
        gaps = formulas.find_outages(columns["ts_ms"], columns["interval_s"],
                                    self.last_flushed_ms if self.restarted else None, self.max_gap_ms)
        availability = self.availability
        first_due = availability.first_sample_ms if not availability.first_stored else None
        meta = {"first_sample_ms": repr(float(first_due))} if first_due is not None else {}
        segment = self.unsaved_segment()
        if segment is not None:
            meta[segment[0]] = segment[1]
        try:
            write_batch(self.store, self.rollups, columns, self.gpu_ring.columns_of(gpu_rows), gaps, meta)
        except Exception as error:
            if self.health.error != str(error):
                log.error("writing %d samples failed (kept in memory and tried again): %s", len(rows), error)
            self.health.ok, self.health.error = False, str(error)
            return
        self.ledger.stored(columns, upto)
        self.gpu_ring.mark_flushed(gpu_upto)
        availability.first_stored = availability.first_stored or first_due is not None
        if segment is not None:
            self.segment_saved(segment)
        availability.stored(gaps)
        self.last_flushed_ms = float(columns["ts_ms"][-1])
        self.restarted = False
        if not self.health.ok:
            log.warning("wrote %d samples held in memory", len(rows))
        self.health.ok, self.health.error = True, ""
        self.health.flushes += 1


@dataclass
class Availability:
    """When sampling began and the gaps since: the uptime figure's inputs."""

    first_sample_ms: float | None = None
    first_stored: bool = False
    outages: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    # the gap since the newest sample stored before this run, counted from the first tick on (the flush that
    # stores it as an outage clears it): uptime reflects a restart at once, not after the first flush
    restarted_after_ms: float | None = None
    max_gap_ms: float = float("inf")
    restart_gap: np.ndarray | None = None
    _sampled: bool = False

    def load(self, store: Store, now_ms: float, window_s: float) -> None:
        stored = store.get_meta("first_sample_ms")
        self.first_sample_ms = float(stored) if stored is not None else None
        self.first_stored = stored is not None
        rows = store.writer.execute("SELECT start_ms, end_ms FROM outages WHERE end_ms >= ? ORDER BY start_ms",
                                    [int(now_ms - window_s * 1000.0)]).fetchall()
        self.outages = np.array(rows, dtype=float).reshape(-1, 2)

    def shift_times(self, since_ms: float, shift_ms: float) -> None:
        """Move what was stamped at or after ``since_ms`` by ``shift_ms``, as the stored rows were moved."""
        if self.first_sample_ms is not None and self.first_sample_ms >= since_ms:
            self.first_sample_ms += shift_ms
        self.outages = np.where(self.outages >= since_ms, self.outages + shift_ms, self.outages)

    def sampled(self, ts_ms: float) -> None:
        if self.first_sample_ms is None:
            self.first_sample_ms = ts_ms
        if not self._sampled:  # the flush's own rule, on the first tick
            self._sampled = True
            gap = formulas.find_outages(np.array([ts_ms]), np.array([np.nan]), self.restarted_after_ms,
                                        self.max_gap_ms)
            self.restart_gap = gap if len(gap) else None

    def stored(self, gaps: np.ndarray) -> None:
        """The outages of a committed flush (the restart's gap among them, if it was the first)."""
        if len(gaps):
            self.outages = np.vstack((self.outages, gaps))
        self.restart_gap = None

    def uptime_pct(self, now_ms: float, window_s: float) -> float:
        outages = self.outages if self.restart_gap is None else np.vstack((self.outages, self.restart_gap))
        return formulas.uptime_pct(now_ms, self.first_sample_ms, window_s * 1000.0, outages)
