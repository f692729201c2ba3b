"""A comparison's life, owned in one place: created, moved through its states, its processes followed while
it runs, and on its end given its duration (monotonic), energy and carbon.

``ComparisonLife`` runs on the writer thread: its writes are the work of ``Store.write`` (inside the writer's
transaction) and its hooks (``sampling.hooks.ComparisonHooks``) are called by the sampler between ticks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tsstats.comparisons import records
from tsstats.comparisons.attributor import Attributor
from tsstats.comparisons.records import Finish
from tsstats.comparisons.stats import ComparisonTracker
from tsstats.comparisons.validation import FINISHED, ComparisonUpdate, NewComparison, check_transition
from tsstats.core.inputs import InputError
from tsstats.figures import formulas
from tsstats.figures.grid import GridIntensity
from tsstats.figures.moment import ComparisonFigures
from tsstats.sampling.energy_sums import comparison_energy
from tsstats.sources.nvml import GpuReading
from tsstats.storage.sql import Connection


class RunClock:
    """When comparisons started running, on the monotonic clock (writer thread): a duration is the monotonic time
    between start and finish, whatever the wall clock did meanwhile. A comparison started before a restart has
    no monotonic start: its finish is the wall clock's, never before its start."""

    def __init__(self, monotonic: Callable[[], float]):
        self._monotonic = monotonic
        self._started: dict[int, float] = {}

    def started(self, comparison_id: int) -> None:
        self._started[comparison_id] = self._monotonic()

    def finished_ms(self, comparison_id: int, started_ms: int | None, now_ms: int) -> int:
        mono = self._started.pop(comparison_id, None)
        if started_ms is None:
            return now_ms
        if mono is None:
            return max(now_ms, started_ms)
        return started_ms + round((self._monotonic() - mono) * 1000.0)


class ComparisonLife:
    def __init__(self, attributor: Attributor, tracker: ComparisonTracker, run_clock: RunClock, pue: float,
                 grid: GridIntensity, pending: Callable[[], dict[str, np.ndarray]]):
        """``pending()``: the sample rows not yet stored, by ring column."""
        self.attributor = attributor
        self.tracker = tracker
        self.run_clock = run_clock
        self.pue = pue
        self.grid = grid
        self.pending = pending

    # -- writes (the work of Store.write, on the writer thread) -----------------------------------------
    def create(self, con: Connection, new: NewComparison, now_ms: int) -> dict[str, Any]:
        """A new comparison; one created running with ``pids`` is followed at once."""
        record = records.insert_comparison(con, new, now_ms)
        if new.status == "running":
            self.run_clock.started(record["id"])
            if new.pids:
                self.attributor.track(record["id"], new.pids)
        return record

    def update(self, con: Connection, comparison_id: int, update: ComparisonUpdate, now_ms: int) -> dict[str, Any]:
        """Check the transition, follow the processes a running comparison names, and give one that ran and now
        finishes its duration, energy and carbon. With ``pids``, its energy is what the attributor gave its
        processes; without, the machine's energy while it ran, shared equally among the comparisons running."""
        current = records.current_status(con, comparison_id)
        if current is None:
            raise InputError(f"no comparison {comparison_id}", status=404)
        status, started_ms, named = current
        check_transition(status, update.status)
        pids = update.pids or named
        finish = Finish()
        if update.status == "running":
            self.run_clock.started(comparison_id)
            if pids:
                self.attributor.track(comparison_id, pids)
        if update.status in FINISHED:
            finish = self._finish(con, comparison_id, started_ms, pids, now_ms)
        return records.apply_update(con, comparison_id, update, now_ms, finish)

    def _finish(self, con: Connection, comparison_id: int, started_ms: int | None, pids: tuple[int, ...] | None,
                now_ms: int) -> Finish:
        finished_ms = self.run_clock.finished_ms(comparison_id, started_ms, now_ms)
        attributed = self.attributor.untrack(comparison_id)
        if started_ms is None:
            return Finish(0.0, 0.0, finished_ms)
        until_ms = max(now_ms, started_ms)
        pending, pue, grid = self.pending(), self.pue, self.grid
        if pids:
            machine_kwh, _ = comparison_energy(con, pending, started_ms, until_ms,
                                               [(comparison_id, started_ms, until_ms)], pue, grid)
            attributed = attributed or records.attribution_loaded(con, comparison_id)
            return Finish(formulas.kwh(attributed.total_j * pue), attributed.carbon_kg(pue), finished_ms,
                          machine_kwh, attributed)
        energy_kwh, carbon_kg = comparison_energy(con, pending, started_ms, until_ms,
                                                  records.running_intervals(con, started_ms, until_ms), pue, grid)
        return Finish(energy_kwh, carbon_kg, finished_ms)

    def process_exists(self, pid: int) -> bool:
        return self.attributor.exists(pid)

    # -- the sampler's hooks (sampling.hooks.ComparisonHooks) --------------------------------------------
    @property
    def tracking(self) -> bool:
        return bool(self.attributor.tracked)

    def load(self, con: Connection, now_ms: float) -> None:
        self.tracker.refresh(con, now_ms)
        for comparison_id, (pids, given) in records.running_with_pids(con).items():
            self.attributor.track(comparison_id, pids, given)

    def add_tick(self, host: dict[str, float], gpus: list[GpuReading]) -> None:
        self.attributor.add_tick(host, gpus)

    def attribute(self, now_ms: float) -> None:
        self.attributor.attribute(now_ms)

    def save(self, con: Connection) -> None:
        records.save_attribution(con, {comparison_id: tracked.attributed
                                       for comparison_id, tracked in self.attributor.tracked.items()})

    def changed(self) -> None:
        self.tracker.changed()

    def refresh(self, con: Connection, now_ms: float) -> None:
        self.tracker.refresh(con, now_ms)

    def shown(self) -> ComparisonFigures:
        return self.tracker.shown
