"""Undoing a step back of the wall clock in what the sampler holds and has stored (sampler thread): the rows
stamped ahead move back in one transaction (``clocksteps.move_rows``), then the rollup state, the rings, the
availability record and the flush mark follow in memory."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tsstats.core.timeparse import rfc3339_ms
from tsstats.sampling import clocksteps
from tsstats.sampling.availability import Availability
from tsstats.sampling.clocksteps import ClockWatch, StepBack
from tsstats.sampling.flushing import Flusher
from tsstats.sampling.ring import Ring
from tsstats.storage.rollups import Rollups
from tsstats.storage.sql import Connection, first
from tsstats.storage.store import Store

log = logging.getLogger("tsstats.sampler")


class StepMover:
    def __init__(self, store: Store, rollups: Rollups, rings: tuple[Ring, ...], availability: Availability,
                 flusher: Flusher, watch: ClockWatch, period_ms: float,
                 reload: Callable[[Connection], None] = lambda con: None):
        """``reload(connection)`` reloads what was computed from the moved rows (after a step while sampling;
        the sampler sets it)."""
        self.store = store
        self.rollups = rollups
        self.rings = rings
        self.availability = availability
        self.flusher = flusher
        self.watch = watch
        self.period_ms = period_ms
        self.reload = reload
        self._failure = ""  # why rows stamped ahead could not be moved, once said

    def undo_while_stopped(self, con: Connection, now_ms: float, mono_s: float) -> None:
        """Rows stamped ahead of the wall clock (it stepped back while the service was stopped) are moved back;
        else the saved clock segment carries on if this is the same boot."""
        saved = clocksteps.load_segment(con)
        newest = first(con.execute("SELECT max(ts_ms) FROM samples").fetchall())[0]
        step = clocksteps.step_at_start(None if newest is None else float(newest), now_ms, mono_s, saved,
                                        self.watch.boot, self.period_ms)
        if step is None:
            self.watch.resume(saved)
        elif self.move(step, reload=False):
            self.watch.moved(step, now_ms - mono_s * 1000.0)

    def step_back(self, step: StepBack) -> bool:
        """The wall clock stepped back while sampling: move what was stamped ahead (a tick's callback)."""
        return self.move(step, reload=True)

    def move(self, step: StepBack, reload: bool) -> bool:
        try:
            tiers = self.store.transaction(lambda con: clocksteps.move_rows(con, step, self.rollups.state))
        except Exception as error:
            if str(error) != self._failure:  # said once, not every tick it is tried again
                log.error("the wall clock stepped back %.3f s; moving the rows stamped since %s failed (tried "
                          "again every tick): %s", -step.shift_ms / 1000.0, rfc3339_ms(int(step.since_ms)), error)
            self._failure = str(error)
            return False
        self._failure = ""
        log.warning("the wall clock stepped back %.3f s: moved the rows stamped since %s by that much",
                    -step.shift_ms / 1000.0, rfc3339_ms(int(step.since_ms)))
        self.rollups.commit(tiers)
        for ring in self.rings:
            ring.shift_times(step.since_ms, step.shift_ms)
        self.availability.shift_times(step.since_ms, step.shift_ms)
        last = self.flusher.last_flushed_ms
        if last is not None and last >= step.since_ms:
            self.flusher.last_flushed_ms = last + step.shift_ms
        if reload:
            self.reload(self.store.writer)
        return True
