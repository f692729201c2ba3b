"""The grid's rows over time put in force: the file's rows at start-up, and a live feed's rows written (or
removed) on the writer thread, after which the series in force and the report window's carbon are reloaded."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from tsstats.figures.grid import GridIntensity, GridRow, GridSeries, last_end_ms
from tsstats.sampling.energy import EnergyLedger
from tsstats.storage.grid_table import load_series, log_unusable, remove_rows, replace_rows
from tsstats.storage.sql import Connection
from tsstats.storage.store import Store


def install_file_rows(store: Store, grid: GridIntensity, file_rows: list[GridRow] | None) -> None:
    """The file's rows replace the file rows stored before (none without a file); the feed's stay (at start-up,
    before the sampler thread runs)."""
    def write(con: Connection) -> None:
        con.execute("DELETE FROM grid_intensity WHERE source = 'file'")
        if file_rows:
            replace_rows(con, file_rows, "file")
    store.transaction(write)
    log_unusable(store.writer)
    grid.series = load_series(store.writer)


@dataclass(frozen=True)
class GridRemoval:
    removed: int  # rows
    series: GridSeries | None  # what is in force after


class GridFeed:
    def __init__(self, store: Store, grid: GridIntensity, ledger: EnergyLedger, wall: Callable[[], float]):
        self.store = store
        self.grid = grid
        self.ledger = ledger
        self.wall = wall

    def feed(self, rows: list[GridRow]) -> Future[None]:
        """Store a live feed's rows (they replace what they overlap), then carry on with them; resolves once
        committed and in force."""
        def write(con: Connection) -> GridSeries | None:
            replace_rows(con, rows, "feed")
            return load_series(con)

        changed_to_ms = last_end_ms([row.start_ms for row in rows])
        return self.store.write(write, then=lambda con, series: self._in_force(series, changed_to_ms))

    def remove(self, from_ms: int, to_ms: int) -> Future[GridRemoval]:
        """Remove the rows (of either source) that start in [from_ms, to_ms); resolves once committed and the
        rest in force."""
        def write(con: Connection) -> GridRemoval:
            removed = remove_rows(con, from_ms, to_ms)
            return GridRemoval(removed, load_series(con))

        return self.store.write(write, then=lambda con, done: self._in_force(done.series, to_ms))

    def _in_force(self, series: GridSeries | None, changed_to_ms: float) -> None:
        """The rows in force from now; the report window is summed afresh within a second (coalesced, on the
        writer thread) if the rows changed reach into it."""
        self.grid.series = series
        if changed_to_ms > self.wall() * 1000.0 - self.ledger.window.span_ms:
            self.ledger.mark_window_stale()  # summed afresh within a second, shown by the next build
