"""History up to the last tick: the sample rows still in the sampler's ring (not flushed yet) are read beside
the stored ones, in the same buckets and aggregates. They are registered on the reading cursor for the one
query; a row that a flush stored meanwhile is read once, from the table (the ring's rows count only after
the newest stored time)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from tsstats.storage.sql import Connection

RING_VIEWS = {"samples": "ring_samples", "gpu_samples": "ring_gpu_samples"}


@dataclass(frozen=True)
class PendingRows:
    """Rows not stored yet, as the tables store them (``RowSpec.to_stored``; NaN reads as NULL)."""

    host: dict[str, np.ndarray] = field(default_factory=dict)
    gpu: dict[str, np.ndarray] = field(default_factory=dict)


def ring_source(table: str, first_ts_ms: int) -> str:
    """A FROM item of the ring's rows of ``table`` newer than anything stored in it."""
    view = RING_VIEWS[table]
    return (f"(SELECT * FROM {view} WHERE ts_ms > (SELECT coalesce(max(ts_ms), -1) FROM {table} "
            f"WHERE ts_ms >= {first_ts_ms})) AS {view}_new")


@contextmanager
def registered(con: Connection, pending: PendingRows | None) -> Iterator[dict[str, str]]:
    """Register the pending rows for one query; yields, per raw table with rows, the FROM item to read them."""
    sources: dict[str, str] = {}
    for table, columns in (("samples", pending.host if pending else {}), ("gpu_samples", pending.gpu if pending
                                                                           else {})):
        times = columns.get("ts_ms")
        if times is not None and len(times):
            con.register(RING_VIEWS[table], columns)
            sources[table] = ring_source(table, int(np.nanmin(times)))
    try:
        yield sources
    finally:
        for table in sources:
            con.unregister(RING_VIEWS[table])
