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

    def uptime_pct(self, now_ms: float, window_s: float) -> float:
        return formulas.uptime_pct(now_ms, self.first_sample_ms, window_s * 1000.0, self.outages)
