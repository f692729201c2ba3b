"""This service's own API requests: handling time and status, over a sliding window and since start.

The dashboard's responseTime and errorRate describe the comparison work, not this service; these figures go
to ``/metrics`` (a request-duration histogram and a request counter by status class) and ``meta.service``.
Requests are counted into one-second buckets (plain lists: this runs on every request), so memory stays
fixed however heavy the load. One thread records (the server's event loop) and needs no lock; readers copy
the lists, and at worst see one request's counts a bucket late.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

from tsstats.figures.moment import RequestSummary

# upper bounds of the duration histogram, in seconds (Prometheus' ``le``)
DURATION_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                      2.5, 5.0, 10.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


class RequestStats:
    def __init__(self, window_s: int = 300, clock: Callable[[], float] = time.perf_counter):
        self.window_s = window_s
        self._clock = clock
        self._second = [-1] * window_s  # which second each bucket holds
        self._count = [0] * window_s
        self._errors = [0] * window_s
        self._total_s = [0.0] * window_s
        self._by_hundreds = [0] * 10  # since start, by status // 100
        self.duration_counts = [0] * (len(DURATION_BUCKETS_S) + 1)  # per bucket, the last one +Inf
        self.total_seconds = 0.0

    @property
    def by_class(self) -> dict[str, int]:
        """Requests since start by status class, ``1xx`` to ``5xx``."""
        return {name: self._by_hundreds[i + 1] for i, name in enumerate(STATUS_CLASSES)}

    def record(self, duration_s: float, status: int, now: float | None = None) -> None:
        """Count one response; ``now`` is the clock's reading if the caller has it already."""
        second = int(self._clock() if now is None else now)
        slot = second % self.window_s
        if self._second[slot] != second:
            self._count[slot] = 0
            self._errors[slot] = 0
            self._total_s[slot] = 0.0
            self._second[slot] = second
        self._count[slot] += 1
        self._total_s[slot] += duration_s
        if status >= 500:
            self._errors[slot] += 1
        self._by_hundreds[status // 100] += 1  # HTTP statuses are 100 to 599
        self.duration_counts[bisect.bisect_left(DURATION_BUCKETS_S, duration_s)] += 1
        self.total_seconds += duration_s

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """(le, requests at most that long) for every bound and +Inf, as Prometheus' histogram wants them."""
        counts = list(self.duration_counts)
        bounds = [f"{bound:g}" for bound in DURATION_BUCKETS_S] + ["+Inf"]
        running = 0
        buckets = []
        for bound, count in zip(bounds, counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets

    def summary(self) -> RequestSummary:
        """Mean handling time and 5xx share over the window."""
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
            return RequestSummary(self.window_s, 0, 0.0, 0.0)
        return RequestSummary(self.window_s, count, 1000.0 * total / count, 100.0 * errors / count)
