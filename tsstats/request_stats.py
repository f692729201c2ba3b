"""Handling time and server errors of this service's own API requests, over a sliding window.

Requests are counted into one-second buckets (plain lists: this runs on every request), so memory stays
fixed however heavy the load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RequestStats:
    def __init__(self, window_s: int = 300, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self._clock = clock
        self._second = [-1] * window_s  # which second each bucket holds
        self._count = [0] * window_s
        self._errors = [0] * window_s
        self._total_s = [0.0] * window_s
        self._lock = threading.Lock()
        self.total_requests = 0
        self.total_errors = 0
        self.total_seconds = 0.0

    def record(self, duration_s: float, status: int) -> None:
        second = int(self._clock())
        slot = second % self.window_s
        error = 1 if status >= 500 else 0
        with self._lock:
            if self._second[slot] != second:
                self._second[slot] = second
                self._count[slot] = 0
                self._errors[slot] = 0
                self._total_s[slot] = 0.0
            self._count[slot] += 1
            self._errors[slot] += error
            self._total_s[slot] += duration_s
            self.total_requests += 1
            self.total_errors += error
            self.total_seconds += duration_s

    def summary(self) -> tuple[float, float, int]:
        """(mean handling time in ms, % of responses >= 500, requests) over the window."""
        oldest = int(self._clock()) - self.window_s
        count = errors = 0
        total = 0.0
        with self._lock:
            for slot, second in enumerate(self._second):
                if second > oldest:
                    count += self._count[slot]
                    errors += self._errors[slot]
                    total += self._total_s[slot]
        if count == 0:
            return 0.0, 0.0, 0
        return 1000.0 * total / count, 100.0 * errors / count, count
