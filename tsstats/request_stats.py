"""Handling time and server errors of this service's own API requests, over a sliding window.

Requests are counted into one-second buckets (plain lists: this runs on every request), so memory stays
fixed however heavy the load. One thread records (the server's event loop) and needs no lock; readers copy
the lists, and at worst see one request's counts a bucket late.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RequestStats:
    def __init__(self, window_s: int = 300, clock: Callable[[], float] = time.perf_counter):
        self.window_s = window_s
        self._clock = clock
        self._second = [-1] * window_s  # which second each bucket holds
        self._count = [0] * window_s
        self._errors = [0] * window_s
        self._total_s = [0.0] * window_s
        self.total_requests = 0
        self.total_errors = 0
        self.total_seconds = 0.0

    def record(self, duration_s: float, status: int, now: float | None = None) -> None:
        """Count one response; ``now`` is the clock's reading if the caller has it already."""
        second = int(self._clock() if now is None else now)
        slot = second % self.window_s
        error = 1 if status >= 500 else 0
        if self._second[slot] != second:
            self._count[slot] = 0
            self._errors[slot] = 0
            self._total_s[slot] = 0.0
            self._second[slot] = second
        self._count[slot] += 1
        self._errors[slot] += error
        self._total_s[slot] += duration_s
        self.total_requests += 1
        self.total_errors += error
        self.total_seconds += duration_s

    def summary(self) -> tuple[float, float, int]:
        """(mean handling time in ms, % of responses >= 500, requests) over the window."""
        oldest = int(self._clock()) - self.window_s
        seconds, counts, errors_by, totals = (list(self._second), list(self._count), list(self._errors),
                                              list(self._total_s))
        count = errors = 0
        total = 0.0
        for slot, second in enumerate(seconds):
            if second > oldest:
                count += counts[slot]
                errors += errors_by[slot]
                total += totals[slot]
        if count == 0:
            return 0.0, 0.0, 0
        return 1000.0 * total / count, 100.0 * errors / count, count
