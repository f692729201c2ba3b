"""A fixed-size ring of samples in numpy: one row a tick, one float64 column a metric, NaN for no reading.

Rows stay pending until the writer marks them flushed, after they are committed: a failed write leaves them
pending for the next try, and readers see every row either pending or stored."""

from __future__ import annotations

import threading

import numpy as np


class Ring:
    """Rows appended by one writer; readers take copies under a lock. Rows not yet flushed are tracked."""

    def __init__(self, columns: tuple[str, ...], capacity: int):
        if capacity < 2:
            raise ValueError("capacity must be at least 2")
        self.columns = columns
        self.index = {name: i for i, name in enumerate(columns)}
        self.capacity = capacity
        self._data = np.full((capacity, len(columns)), np.nan)
        self._count = 0  # rows ever appended
        self._flushed = 0  # rows ever handed to drain()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return min(self._count, self.capacity)

    @property
    def total(self) -> int:
        return self._count

    def append(self, row: np.ndarray | list[float]) -> None:
        with self._lock:
            self._data[self._count % self.capacity] = row
            self._count += 1

    def _ordered(self, first: int, last: int) -> np.ndarray:
        """Copy of rows with absolute numbers first..last-1 (all still held)."""
        if last <= first:
            return np.empty((0, len(self.columns)))
        start, stop = first % self.capacity, last % self.capacity
        if start < stop:
            return self._data[start:stop].copy()
        return np.concatenate((self._data[start:], self._data[:stop]))

    def latest(self, rows: int) -> np.ndarray:
        with self._lock:
            rows = min(rows, len(self))
            return self._ordered(self._count - rows, self._count)

    def since(self, ts_ms: float, ts_column: str = "ts_ms") -> np.ndarray:
        """Rows whose timestamp is at or after ``ts_ms`` (the ring holds them in time order)."""
        with self._lock:
            held = self._ordered(self._count - len(self), self._count)
        if not len(held):
            return held
        column = held[:, self.index[ts_column]]
        return held[np.searchsorted(column, ts_ms, side="left"):]

    def unflushed(self) -> tuple[np.ndarray, int, int]:
        """The rows not yet marked flushed (still held), the row number to pass to ``mark_flushed`` once they
        are stored, and how many were overwritten before they could be stored (counted once)."""
        with self._lock:
            oldest = self._count - len(self)
            lost = max(0, oldest - self._flushed)
            if lost:
                self._flushed = oldest
            return self._ordered(self._flushed, self._count), self._count, lost

    def mark_flushed(self, upto: int) -> None:
        """Rows before row number ``upto`` are stored: they are no longer pending."""
        with self._lock:
            self._flushed = max(self._flushed, upto)

    def pending(self) -> np.ndarray:
        """Copy of the rows not yet stored (still held), oldest first."""
        with self._lock:
            return self._ordered(max(self._flushed, self._count - len(self)), self._count)

    def pending_columns(self) -> dict[str, np.ndarray]:
        """The rows not yet stored, by column (copies: any thread)."""
        return self.columns_of(self.pending())

    def shift_times(self, since_ms: float, shift_ms: float, column: str = "ts_ms") -> None:
        """Move the held rows stamped at or after ``since_ms`` by ``shift_ms`` (a step of the wall clock)."""
        with self._lock:
            held = self._data[:len(self), self.index[column]]
            held[held >= since_ms] += shift_ms

    def columns_of(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {name: rows[:, i] for i, name in enumerate(self.columns)}
