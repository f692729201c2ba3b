"""Handling time and server errors of this service's own API requests, over a sliding window.

Requests are counted into one-second buckets, so memory stays fixed however heavy the load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np


class RequestStats:
    def __init__(self, window_s: int = 300, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._second = np.full(window_s, -1, dtype=np.int64)  # which second each bucket holds
        self._count = np.zeros(window_s, dtype=np.int64)
        self._errors = np.zeros(window_s, dtype=np.int64)
        self._total_ms = np.zeros(window_s)
        self._lock = threading.Lock()
        self.total_requests = 0
        self.total_errors = 0
        self.total_seconds = 0.0

    def record(self, duration_s: float, status: int) -> None:
        second = int(self._clock())
        slot = second % self.window_s
        with self._lock:
            if self._second[slot] != second:
                self._second[slot] = second
                self._count[slot] = 0
                self._errors[slot] = 0
                self._total_ms[slot] = 0.0
            self._count[slot] += 1
            self._total_ms[slot] += duration_s * 1000.0
            error = status >= 500
            self._errors[slot] += error
            self.total_requests += 1
            self.total_errors += error
            self.total_seconds += duration_s

    def summary(self) -> tuple[float, float, int]:
        """(mean handling time in ms, % of responses >= 500, requests) over the window."""
        now = int(self._clock())
        with self._lock:
            live = self._second > now - self.window_s
            count = int(self._count[live].sum())
            errors = int(self._errors[live].sum())
            total_ms = float(self._total_ms[live].sum())
        if count == 0:
            return 0.0, 0.0, 0
        return total_ms / count, 100.0 * errors / count, count
