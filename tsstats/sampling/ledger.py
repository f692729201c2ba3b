"""The energy ledger: the sliding report window and the retained totals behind the Prometheus counters, each
its stored part plus the ring's unflushed rows (sampler thread writes, any thread reads).

The ledger hands a flushed batch from "in memory" to "stored" under one lock, at the same moment the ring
marks it flushed, so a reader never sees the batch in neither place (a dip, which Prometheus reads as a
counter reset) nor in both.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from tsstats.figures.energy import EnergySums, Totals
from tsstats.figures.grid import GridIntensity
from tsstats.sampling.energy_sums import covered_s, memory_sums
from tsstats.sampling.ring import Ring
from tsstats.storage.energy_sql import stored_sums
from tsstats.storage.sql import Connection


class EnergyWindow:
    """Stored sums over a sliding window [now - span, now), kept up to date without rescanning history.

    New batches are added as they are flushed; rows that slide out of the window are subtracted with a
    range query over just those rows (zone maps keep it to the few row groups concerned).
    """

    def __init__(self, span_ms: float):
        self.span_ms = span_ms
        self.lower_ms: float | None = None
        self.sums = EnergySums()

    def load(self, con: Connection, now_ms: float, grid: GridIntensity) -> None:
        self.lower_ms = now_ms - self.span_ms
        self.sums = stored_sums(con, self.lower_ms, 2 ** 62, grid)

    def add_sums(self, sums: EnergySums, ts_ms: np.ndarray) -> None:
        """Add the sums of a flushed batch (rows are recent: inside the window but for a restart's first)."""
        if self.lower_ms is None or len(ts_ms) == 0 or ts_ms[0] >= self.lower_ms:
            self.sums = self.sums + sums

    def slid_out(self, con: Connection, now_ms: float, grid: GridIntensity) -> tuple[EnergySums, float] | None:
        """The stored sums that slide out when the window ends at ``now_ms``, and the new lower edge."""
        new_lower = now_ms - self.span_ms
        if self.lower_ms is None or new_lower <= self.lower_ms:
            return None
        return stored_sums(con, self.lower_ms, new_lower, grid), new_lower

    def slide(self, slid: EnergySums, new_lower: float) -> None:
        self.sums = self.sums - slid
        self.lower_ms = new_lower


@dataclass(frozen=True)
class LedgerView:
    """The ledger read at one moment: stored and in-memory energy together."""

    window: EnergySums  # the report window
    totals: Totals  # everything retained


class EnergyLedger:
    """The report window and the retained totals, each stored part plus the ring's unflushed rows."""

    def __init__(self, ring: Ring, window_ms: float, grid: GridIntensity):
        """``grid``: the intensity each sample's carbon is taken at."""
        self.ring = ring
        self.window = EnergyWindow(window_ms)
        self.totals = Totals()
        self.grid = grid
        self.window_stale = False  # the grid's rows over the window changed since it was summed
        self._lock = threading.Lock()

    def load(self, con: Connection, now_ms: float, totals: Totals) -> None:
        with self._lock:
            self.totals = totals
            self.window.load(con, now_ms, self.grid)

    def mark_window_stale(self) -> None:
        """The grid's rows over the window changed: the sampler sums it afresh (``reload_window``) at most once
        a second however many feeds came, so that a flood of them cannot hold the writer thread."""
        self.window_stale = True

    def reload_window(self, con: Connection, now_ms: float) -> None:
        """Sum the report window afresh (the grid's rows over time changed)."""
        self.window_stale = False
        window = EnergyWindow(self.window.span_ms)
        window.load(con, now_ms, self.grid)
        with self._lock:
            self.window = window

    def stored(self, columns: dict[str, np.ndarray], flushed_upto: int) -> None:
        """A batch of ring rows has been committed: move it from memory to the stored sums, and mark it
        flushed in the ring, in one step for readers."""
        batch = memory_sums(columns, self.grid)
        with self._lock:
            self.totals = self.totals.plus(batch, covered_s(columns))
            self.window.add_sums(batch, columns["ts_ms"])
            self.ring.mark_flushed(flushed_upto)

    def advance(self, con: Connection, now_ms: float) -> None:
        """Slide the window's lower edge to ``now - span`` (a query over the rows that slid out, outside the
        lock: only the writer thread stores rows)."""
        slid = self.window.slid_out(con, now_ms, self.grid)
        if slid is not None:
            with self._lock:
                self.window.slide(*slid)

    def view(self) -> LedgerView:
        with self._lock:
            pending_columns = self.ring.columns_of(self.ring.pending())
            pending = memory_sums(pending_columns, self.grid)
            return LedgerView(window=self.window.sums + pending,
                              totals=self.totals.plus(pending, covered_s(pending_columns)))
