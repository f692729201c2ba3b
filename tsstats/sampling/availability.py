"""When sampling began and the gaps since: the uptime figure's inputs (sampler thread)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsstats.figures import formulas
from tsstats.storage.store import Store


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
