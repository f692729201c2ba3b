"""Room for records (comparisons, phases, offsets, grid rows) within ``max_db_mb``.

Samples make room for themselves (retention and the size cap delete the oldest); records are never deleted by
the service, so they may take at most ``RECORDS_SHARE`` of the cap. What they take is estimated from their
rows and texts (``records_bytes``, measured on each retention pass), and each write adds what it brings; a
write beyond the room is refused with ``InsufficientStorage`` (507) naming the figures. Without a cap there is
no bound but the disk's (whose full state the store reports as 503).
"""

from __future__ import annotations

from tsstats.core.units import MIB
from tsstats.storage.errors import InsufficientStorage
from tsstats.storage.sql import Connection

RECORDS_SHARE = 0.5
RECORD_ROW_BYTES = 512  # a comparison's, a phase's or an offset's fixed columns, with room to spare
GRID_ROW_BYTES = 48
_MEASURE = (
    f"SELECT (SELECT count(*) * {RECORD_ROW_BYTES} + coalesce(sum(length(metadata) + length(name) "
    "+ coalesce(length(error), 0) + coalesce(length(accounting), 0)), 0) FROM comparisons) "
    f"+ (SELECT count(*) * {RECORD_ROW_BYTES} + coalesce(sum(length(name)), 0) FROM phases) "
    f"+ (SELECT count(*) * {RECORD_ROW_BYTES} + coalesce(sum(length(note)), 0) FROM offsets) "
    f"+ (SELECT count(*) * {GRID_ROW_BYTES} FROM grid_intensity)"
)


def records_bytes(con: Connection) -> int:
    return int(con.execute(_MEASURE).fetchall()[0][0])


class RecordRoom:
    """What the records take against their share of the cap (``used_bytes`` is set on the writer thread by
    ``measure`` and raised on the event loop by ``charge``: a plain int, each step atomic)."""

    def __init__(self, max_db_mb: float | None):
        self.max_db_mb = max_db_mb
        self.room_bytes = None if max_db_mb is None else max_db_mb * 1e6 * RECORDS_SHARE
        self.used_bytes = 0

    def measure(self, con: Connection) -> None:
        self.used_bytes = records_bytes(con)

    def charge(self, size_bytes: int) -> None:
        """Count a record write of about ``size_bytes``; ``InsufficientStorage`` when it does not fit."""
        if self.room_bytes is None:
            return
        if self.used_bytes + size_bytes > self.room_bytes:
            raise InsufficientStorage(
                f"the records (comparisons, phases, offsets, grid rows) take about {self.used_bytes / MIB:.1f} MiB, "
                f"the most max_db_mb ({self.max_db_mb:g} MB) leaves them ({RECORDS_SHARE:.0%} of it); delete old "
                "comparisons (DELETE /api/comparisons/{id}) or grid rows, or raise max_db_mb; nothing was written",
                size_bytes, max(int(self.room_bytes - self.used_bytes), 0))
        self.used_bytes += size_bytes
