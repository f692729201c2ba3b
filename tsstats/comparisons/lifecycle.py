"""A comparison's life, owned in one place: created, moved through its states, its phases opened and closed,
its processes followed while it runs, and on its end given its duration (monotonic), energy, carbon, SCI
and how each was obtained. When every process a run names has exited, its measured window ends then (energy and
CPU time up to the exit) and the record waits for the client's report; one nobody reports on within
``report_grace`` is failed by the service, and a client's final status replaces that verdict whenever it
comes (``endedBy`` says who ended it). A record can be deleted.

``ComparisonLife`` runs on the writer thread: its writes are the work of ``Store.write`` (inside the writer's
transaction) and its hooks (``sampling.hooks.ComparisonHooks``) are called by the sampler between ticks.
A window's edges (a run's start and end, a phase's) are read at their own instants: the machine's energy
from its counters then, and the named processes' CPU time then.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tsstats.comparisons import models, phases, records
from tsstats.comparisons.attributor import Attributor
from tsstats.comparisons.conditions import WindowSamples, run_conditions, window_samples
from tsstats.comparisons.phases import NewPhase, PhaseEnd
from tsstats.comparisons.records import EXITED_UNREPORTED, Current, Finish
from tsstats.comparisons.stats import ComparisonTally, TallyRow
from tsstats.comparisons.validation import FINISHED, ComparisonUpdate, NewComparison, check_transition
from tsstats.core.inputs import InputError
from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH, MS_PER_S
from tsstats.figures import fairness, formulas
from tsstats.figures.energy import Attributed, MachineJoules
from tsstats.figures.grid import GridIntensity
from tsstats.figures.methods import Method, Methods
from tsstats.figures.moment import ComparisonFigures
from tsstats.sampling.energy import SharedEnergy, comparison_energy
from tsstats.storage.sql import Connection

log = logging.getLogger("tsstats.comparisons")

MODELLED = (Method.TDP_MODEL, Method.DIMM_MODEL)


class RunClock:
    """When windows (runs, phases) opened, on the monotonic clock and on the machine's energy counters (writer
    thread): a duration is the monotonic time between its edges, whatever the wall clock did meanwhile, and its
    machine energy the counters' difference. A window opened before a restart has neither: its finish is the
    wall clock's, never before its start, and its energy comes from the stored samples."""

    def __init__(self, monotonic: Callable[[], float], energy_now: Callable[[], MachineJoules]):
        self._monotonic = monotonic
        self.energy_now = energy_now  # the machine's energy to this instant (reads the counters)
        self._started: dict[Hashable, tuple[float, MachineJoules]] = {}

    def started(self, key: Hashable) -> None:
        self._started[key] = (self._monotonic(), self.energy_now())

    @property
    def open(self) -> bool:
        """Whether a window opened in this process' life is open (a run or phase being measured)."""
        return bool(self._started)

    def forget(self, key: Hashable) -> None:
        self._started.pop(key, None)

    def finished(self, key: Hashable, started_ms: int | None, now_ms: int, energy: MachineJoules | None = None
                 ) -> tuple[int, MachineJoules | None]:
        """(finish time in epoch ms, the machine's energy over the window or None when it opened before a
        restart); ``energy``: the counters read now for several windows closing together."""
        mark = self._started.pop(key, None)
        if started_ms is None:
            return now_ms, None
        if mark is None:
            return max(now_ms, started_ms), None
        mono, mark_energy = mark
        now_energy = energy if energy is not None else self.energy_now()
        return started_ms + round((self._monotonic() - mono) * MS_PER_S), now_energy - mark_energy


@dataclass(frozen=True)
class RunPolicy:
    """What a run's figures and its judgement take from the settings (built by the assembly)."""

    pue: float
    embodied_kg: float | None
    lifetime_years: float
    contention_limit_pct: float
    report_grace_s: float  # how long a run whose processes exited waits for its report
    max_tracked_trees: int


@dataclass(frozen=True)
class Machine:
    """What a run ran on: the CPU's model and each GPU's name (none: no GPU read)."""

    cpu: str | None = None
    gpus: tuple[str, ...] = ()


class ComparisonLife:
    def __init__(self, attributor: Attributor, tally: ComparisonTally, run_clock: RunClock, policy: RunPolicy,
                 grid: GridIntensity, pending: Callable[[], dict[str, np.ndarray]], methods: Callable[[], Methods],
                 pending_gpu: Callable[[], dict[str, np.ndarray]] = dict, machine: Machine | None = None):
        """``pending()``, ``pending_gpu()``: the sample rows (per-GPU rows) not yet stored, by ring column;
        ``methods()``: how each component's energy is obtained now; ``machine``: what it runs on, recorded with
        each run's accounting so that results of many machines can be read together."""
        self.pending_gpu = pending_gpu
        self.machine = machine or Machine()
        self.attributor = attributor
        self.tally = tally
        self.hours = models.ModelHours()  # the models table's parts, kept by the same writes
        self.run_clock = run_clock
        self.policy = policy
        self.grid = grid
        self.pending = pending
        self.methods = methods
        self.awaiting: dict[int, int] = {}  # runs whose processes exited: when, until their report comes
        # comparisons created by this process, not yet ended, that have never had a phase: their end reads no
        # phase (two queries fewer); bounded by the comparisons queued or running
        self.phaseless: set[int] = set()
        # the rows the current transaction changed (as they were, as they are) and the offsets it added: given to
        # the stats' tally and the models table's parts once it has committed, dropped if it rolls back
        self._unsaved: list[tuple[TallyRow | None, TallyRow | None]] = []
        self._unsaved_kg = 0.0

    # -- writes (the work of Store.write, on the writer thread) -----------------------------------------
    def create(self, con: Connection, new: NewComparison, now_ms: int) -> dict[str, Any]:
        """A new comparison; one created running is timed from now, and followed at once if it names pids."""
        record, counted = records.insert_comparison(con, new, now_ms)
        self.phaseless.add(record["id"])
        self._counted(None, counted)
        models.count_created(con, list(new.models), new.status, now_ms)
        if new.status == "running":
            self._open(record["id"], new.pids)
        return record

    def update(self, con: Connection, comparison_id: int, update: ComparisonUpdate, now_ms: int,
               ended_by: str = "client") -> dict[str, Any]:
        """Check the transition, follow the processes a running comparison names, and give one that ran and now
        finishes its duration, energy and carbon. With ``pids``, its energy is what the attributor gave its
        processes; without, the machine's energy while it ran, shared equally among the comparisons running.
        A run whose processes exited keeps the figures of its window, which closed then; a client's final status
        replaces one the service gave on its own."""
        current = records.current_status(con, comparison_id)
        if current is None:
            raise InputError(f"no comparison {comparison_id}", status=404)
        check_transition(current.status, update.status, current.ended_by)
        pids = update.pids or current.pids
        finish = Finish()
        if update.status == "running":
            self._open(comparison_id, pids)
        replacing = current.status in FINISHED  # the service's verdict, replaced by the client's
        if replacing or (update.status in FINISHED and current.exited_ms is not None):
            finish = Finish(finished_ms=current.finished_ms)  # the window closed already: its figures are kept
        elif update.status in FINISHED:
            finish = self._finish(con, comparison_id, current.started_ms, pids, now_ms)
        phaseless = comparison_id in self.phaseless
        if update.status in FINISHED and not replacing:
            if not phaseless:
                self._close_phases(con, comparison_id, None, update.status, now_ms, finish.finished_ms)
            self.awaiting.pop(comparison_id, None)
        record, counted = records.apply_update(con, comparison_id, update, now_ms, finish,
                                               ended_by if update.status in FINISHED else None,
                                               error_replaced=replacing, phases=not phaseless)
        if update.status in FINISHED:
            self.phaseless.discard(comparison_id)
        models.count_moved(con, current.models, current.status, update.status, record, now_ms)
        self._counted(current.tally, counted)
        return record

    def _counted(self, before: TallyRow | None, after: TallyRow | None) -> None:
        """A comparison's row as it was and as it is, for the stats' tally and the models table's parts."""
        self._unsaved.append((before, after))

    def _open(self, key: Hashable, pids: tuple[int, ...] | None) -> None:
        if pids:
            self.attributor.track(key, pids)  # first: a 409 here leaves nothing behind
        self.run_clock.started(key)

    def _finish(self, con: Connection, comparison_id: int, started_ms: int | None, pids: tuple[int, ...] | None,
                now_ms: int) -> Finish:
        finished_ms, machine = self.run_clock.finished(comparison_id, started_ms, now_ms)
        attributed = self.attributor.untrack(comparison_id, now_ms)
        if started_ms is None:
            return Finish(0.0, 0.0, finished_ms, accounting=self._accounting(0.0, 0.0))
        until_ms = max(now_ms, started_ms)
        judged, fair = self._judge(con, started_ms, until_ms, attributed)
        pue = self.policy.pue
        if pids:
            attributed = attributed or records.attribution_loaded(con, comparison_id)
            machine_j = machine.total_j if machine is not None else comparison_energy(
                con, self.pending(), started_ms, until_ms, [(comparison_id, started_ms, until_ms)],
                self.grid).total_j
            energy_j, joule_g = attributed.total_j, attributed.joule_g_per_kwh
        else:
            shared = comparison_energy(con, self.pending(), started_ms, until_ms,
                                       records.running_intervals(con, started_ms, until_ms), self.grid)
            if machine is not None:  # the counters' own difference over the run's edges, shared alike
                running = max(len(records.running_intervals(con, now_ms, now_ms)), 1)
                shared = shared.scaled_to(machine.total_j) if shared.total_j > 0 else SharedEnergy(
                    machine.total_j / running, machine.total_j,
                    machine.total_j / running * self.grid.intensity_at(now_ms))
            machine_j, energy_j, joule_g = shared.total_j, shared.shared_j, shared.joule_g_per_kwh
        energy_kwh, carbon_kg = formulas.kwh(energy_j * pue), joule_g * pue / JOULES_PER_KWH / GRAMS_PER_KG
        embodied = None
        if self.policy.embodied_kg is not None:
            embodied = formulas.embodied_g(self.policy.embodied_kg, self.policy.lifetime_years,
                                      (finished_ms - started_ms) / MS_PER_S, energy_j / machine_j if machine_j else 0.0)
        return Finish(energy_kwh, carbon_kg, finished_ms, formulas.kwh(machine_j * pue) if pids else None,
                      attributed if pids else None, embodied, self._accounting(energy_kwh, carbon_kg, machine), judged,
                      fair)

    def _judge(self, con: Connection, from_ms: int, to_ms: int, attributed: Attributed | None,
               samples: WindowSamples | None = None) -> tuple[str, bool]:
        """A run's conditions over its window and whether it was fair (JSON for the record, and the verdict);
        contention only where its processes were followed in this process's life (not guessed otherwise).
        ``samples``: read already for a span holding the window."""
        limit = self.policy.contention_limit_pct
        found = run_conditions(con, self.pending(), from_ms, to_ms, self.pending_gpu(), attributed, samples)
        reasons = fairness.unfair_reasons(found, limit)
        return json.dumps({"conditions": found.as_dict(limit), "unfairReasons": reasons}), not reasons

    def _accounting(self, energy_kwh: float, carbon_kg: float, machine: MachineJoules | None = None) -> str:
        """How a run's figures were obtained: each component's method, the estimated ones, the grid used; and
        beside them the measurer's own energy over the run's window (``machine``: the machine's energy over it,
        read at its edges; None for a window opened before a restart, which has no such reading)."""
        methods = self.methods()
        grid = self.grid
        source = "+".join(grid.series.sources) if grid.series is not None else "yearly average"
        mean = carbon_kg * GRAMS_PER_KG / energy_kwh if energy_kwh > 0 else grid.g_per_kwh
        return json.dumps({
            "methods": methods.as_dict(),
            "estimated": [name for name, method in methods.as_dict().items() if method in MODELLED],
            "grid": {"gPerKwh": round(mean, 3), "region": grid.average.region, "source": source},
            "machine": {"cpu": self.machine.cpu, "gpus": list(self.machine.gpus)},
            "measurer": None if machine is None else {
                "energyJ": machine.service_j, "machineEnergyJ": machine.total_j,
                "sharePct": 100.0 * machine.service_j / machine.total_j if machine.total_j > 0 else None},
        })

    # -- phases ---------------------------------------------------------------------------------------------
    def open_phase(self, con: Connection, comparison_id: int, new: NewPhase, now_ms: int) -> dict[str, Any]:
        current = records.current_status(con, comparison_id)
        if current is None:
            raise InputError(f"no comparison {comparison_id}", status=404)
        if current.status != "running" or current.exited_ms is not None:
            state = current.status if current.exited_ms is None else "running, but its processes have exited"
            raise InputError(f"phases open in a running comparison; {comparison_id} is {state}",
                             field="status", status=409)
        self.phaseless.discard(comparison_id)  # first: a phase it may have is always read
        record = phases.insert_phase(con, comparison_id, new, now_ms)
        self._open(("phase", record["id"]), current.pids)
        return record

    def close_phase(self, con: Connection, comparison_id: int, phase_id: int, end: PhaseEnd,
                    now_ms: int) -> dict[str, Any]:
        status = phases.phase_status(con, comparison_id, phase_id)
        if status is None:
            raise InputError(f"no phase {phase_id} in comparison {comparison_id}", status=404)
        if status != "running":
            raise InputError(f"phase {phase_id} is {status} already", field="status", status=409)
        self._close_phases(con, comparison_id, phase_id, end.status, now_ms)
        return phases.phase_by_id(con, phase_id)

    def _close_phases(self, con: Connection, comparison_id: int, top: int | None, status: str, now_ms: int,
                      run_end_ms: int | None = None) -> None:
        """Close a running phase and the phases inside it (every running phase when ``top`` is None); with
        ``status`` 'running' only their windows close (their run's processes exited), the status waits; none
        ends after ``run_end_ms``, its run's own end when the run ends with them. However
        many close, the machine, its energy, the trees and the samples are read once and the phases written by
        one statement: the sampler's ticks never wait long on it."""
        running = phases.running_phases(con, comparison_id)  # (id, parent, started, finished), newest first
        inside = {top} if top is not None else {row[0] for row in running}
        for phase_id, parent, _, _ in reversed(running):
            if parent in inside:
                inside.add(phase_id)
        if status != "running":
            phases.set_phase_status(con, [row[0] for row in running if row[0] in inside and row[3] is not None],
                                    status)
        opening = {row[0]: row[2] for row in running if row[0] in inside and row[3] is None}
        if not opening:
            return
        given = self.attributor.untrack_many([("phase", phase_id) for phase_id in opening], now_ms)
        energy = self.run_clock.energy_now()
        running_runs = max(len(records.running_intervals(con, now_ms, now_ms)), 1)
        samples = window_samples(con, self.pending(), self.pending_gpu(), min(opening.values()), now_ms)
        ended = []
        for phase_id, started_ms in opening.items():
            attributed = given[("phase", phase_id)]
            finished_ms, energy_j, carbon_g = self._phase_energy(("phase", phase_id), started_ms, now_ms, attributed,
                                                                 energy, running_runs)
            if run_end_ms is not None:
                finished_ms = max(min(finished_ms, run_end_ms), started_ms)
            judged, fair = self._judge(con, started_ms, max(finished_ms, started_ms), attributed, samples)
            ended.append((phase_id, finished_ms, energy_j, carbon_g, judged, fair))
        phases.finish_phases(con, status, ended)

    def _phase_energy(self, key: Hashable, started_ms: int, now_ms: int, attributed: Attributed | None,
                      energy: MachineJoules, running_runs: int) -> tuple[int, float | None, float | None]:
        """(finish time, energy in J after PUE, carbon in g) of a phase: its processes' share like its run's
        (``attributed``, what it was given), or the machine's energy over its edges (``energy``: the counters
        now) shared among the ``running_runs`` comparisons running (None after a restart)."""
        pue = self.policy.pue
        finished_ms, machine = self.run_clock.finished(key, started_ms, now_ms, energy)
        if attributed is not None:
            return finished_ms, attributed.total_j * pue, attributed.joule_g_per_kwh * pue / JOULES_PER_KWH
        if machine is None:
            return finished_ms, None, None
        joules = machine.total_j * pue / running_runs
        return finished_ms, joules, joules * self.grid.intensity_at(now_ms) / JOULES_PER_KWH

    def settle(self, con: Connection, exited: list[int], now_ms: float) -> None:
        """Close the windows of the running comparisons whose processes have all exited (``exited``: found now),
        and fail those whose report has not come within ``report_grace``."""
        for comparison_id in exited:
            current = records.current_status(con, comparison_id)
            if current is not None and current.status == "running" and current.exited_ms is None:
                self._processes_exited(con, comparison_id, current, int(now_ms))
        for comparison_id in self.overdue(now_ms):
            self.awaiting.pop(comparison_id, None)
            current = records.current_status(con, comparison_id)
            if current is not None and current.status == "running":
                grace = self.policy.report_grace_s
                error = f"{EXITED_UNREPORTED} ({grace:g} s); a report (PATCH with a final status) still replaces this"
                self.update(con, comparison_id, ComparisonUpdate("failed", None, None, None, error), int(now_ms),
                            ended_by="service")

    def _processes_exited(self, con: Connection, comparison_id: int, current: Current, now_ms: int) -> None:
        finish = self._finish(con, comparison_id, current.started_ms, current.pids, now_ms)
        if comparison_id not in self.phaseless:
            self._close_phases(con, comparison_id, None, "running", now_ms, finish.finished_ms)
        exited_ms = finish.finished_ms if finish.finished_ms is not None else now_ms  # the window's own end
        self._counted(current.tally, records.close_window(con, comparison_id, finish, exited_ms))  # still running
        self.awaiting[comparison_id] = exited_ms

    def overdue(self, now_ms: float) -> list[int]:
        """The runs whose processes exited more than ``report_grace`` ago and that have no final status yet."""
        cut = now_ms - self.policy.report_grace_s * MS_PER_S
        return [comparison_id for comparison_id, exited_ms in self.awaiting.items() if exited_ms <= cut]

    def delete(self, con: Connection, comparison_id: int, now_ms: int) -> bool:
        """Remove a record and its phases; a running one stops being followed."""
        current = records.current_status(con, comparison_id)
        if current is None:
            return False
        models.count_deleted(con, current.models, current.status)
        self.phaseless.discard(comparison_id)
        windows = [("phase", phase_id) for phase_id, *_ in phases.running_phases(con, comparison_id)]
        self.attributor.untrack_many(windows, now_ms)  # one read for them all, as when they close
        for window in windows:
            self.run_clock.forget(window)
        self.attributor.untrack(comparison_id, now_ms)
        self.run_clock.forget(comparison_id)
        self.awaiting.pop(comparison_id, None)
        self._counted(current.tally, None)
        phases.delete_phases(con, comparison_id)
        records.delete_comparison(con, comparison_id)
        return True

    def add_offset(self, con: Connection, offset: records.NewOffset, now_ms: int) -> dict[str, Any]:
        """A carbon offset, counted in the stats' total once committed."""
        record = records.insert_offset(con, offset, now_ms)
        self._unsaved_kg += float(offset.kg)
        return record

    def process_exists(self, pid: int) -> bool:
        return self.attributor.exists(pid)

    # -- the sampler's hooks (sampling.hooks.ComparisonHooks) --------------------------------------------
    @property
    def follows_processes(self) -> bool:
        return bool(self.attributor.tracked)

    @property
    def waiting(self) -> bool:
        return bool(self.awaiting)

    @property
    def measuring(self) -> bool:
        return self.run_clock.open or self.follows_processes or self.waiting

    def load(self, con: Connection, now_ms: float) -> None:
        self.tally.refresh(con, now_ms)
        self.hours.refresh(con)
        self.awaiting = records.awaiting_reports(con)
        skipped = 0
        for comparison_id, (pids, given) in records.running_with_pids(con).items():
            if self.attributor.can_track(pids):
                self.attributor.track(comparison_id, pids, given)
            else:  # max_tracked_trees was lowered since: they keep what they were given
                skipped += 1
        if skipped:
            log.warning("%d running comparisons name more process trees than max_tracked_trees (%d) allows; "
                        "they are not followed further", skipped, self.policy.max_tracked_trees)

    def attribute(self, now_ms: float) -> list[int]:
        return [key for key in self.attributor.attribute(now_ms) if isinstance(key, int)]

    def save(self, con: Connection) -> None:
        records.save_attribution(con, {key: tracked.attributed for key, tracked in self.attributor.tracked.items()
                                       if isinstance(key, int)})

    def changed(self) -> None:
        self.tally.changed()
        self.hours.changed()

    def committed(self) -> None:
        self.tally.apply(self._unsaved, self._unsaved_kg)
        self.hours.apply(self._unsaved)
        self.rolled_back()

    def rolled_back(self) -> None:
        self._unsaved = []
        self._unsaved_kg = 0.0

    def refresh(self, con: Connection, now_ms: float) -> None:
        self.tally.refresh(con, now_ms)
        self.hours.refresh(con)

    def shown(self) -> ComparisonFigures:
        return self.tally.shown
