"""A study: contenders (commands, or callables in this process) over warm-up trials and rounds in a shuffled order,
each trial a run measured by the service, and what a reviewer reads of it: each contender's energy and time with
spread and 95 % intervals, each ratio to the least with its interval and a verdict, the warnings, and exports as
JSON, CSV and Markdown.

Fair trials: before each trial the study waits, up to ``max_wait`` seconds, for a reading of the service's
``GET /api/conditions`` taken after the last trial ended that finds the machine quiet (others' CPU within the
service's ``contention_limit_pct``) and cool (CPU and GPU temperatures within ``COOL_MARGIN_C`` of the study's
first quiet reading, where they are known), and records how long it waited. A trial the service judges unfair
is run again, up to ``retries`` times; the unfair ones are kept, left out of the statistics and named. With
``idle_baseline`` seconds, the machine's idle power is measured first (a run naming no process, alone on the
machine, gets the machine's whole energy) and each trial's energy is also given net of it, both labelled.

``tsstats compare`` (the command line) runs commands through it, ``tsstats.compare`` runs callables. Standard
library only; the statistics are ``tsstats.client.statistics``. Runs on the caller's thread.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from tsstats.client.service import ServiceClient, ServiceRefused, ServiceUnreachable, say
from tsstats.client.statistics import (
    ALPHA,
    OUTLIER_Z,
    SLOW_FIRST,
    WIDE_SPREAD,
    Description,
    Ratio,
    describe,
    outliers,
    ratio,
    slow_first,
)


@dataclass(frozen=True)
class Contender:
    """What a study compares: a name, the command line shown for it (None for a callable), and one trial of it,
    returning its exit status (0: it succeeded)."""

    name: str
    command: list[str] | None
    run_once: Callable[[], int]


@dataclass(frozen=True)
class StudyOptions:
    """How a study runs: ``runs`` rounds (or "auto": from ``min_runs`` until every ratio's 95 % interval is
    within ``target_ci`` % of it, or ``max_runs``), ``warmup`` trials of each first, ``items`` per trial (energy
    per item), the order's ``seed``, whether unfair trials count, and the study's name."""

    runs: int | str = 10
    warmup: int = 1
    items: float | None = None
    seed: int | None = None
    allow_unfair: bool = False
    study: str | None = None
    min_runs: int = 5
    max_runs: int = 30
    target_ci: float = 5.0
    max_wait: float = 30.0  # seconds to wait for a quiet, cool machine before each trial (0: do not wait)
    retries: int = 2  # times a trial judged unfair is run again
    idle_baseline: float = 0.0  # seconds of idle power measured before the study (0: none)


COOL_MARGIN_C = 3.0  # the cool-down: temperatures back within this of the study's first quiet reading
POLL_S = 0.25  # between two readings of the machine while waiting (the service reads it once a second)


@dataclass
class Trial:
    """One run of one command: its wall time, and what the service measured of it."""

    command: int
    number: int  # 1, 2, ... among the command's measured trials; 0 for a warm-up
    wall_s: float
    exit_code: int
    energy_j: float | None = None
    record_id: int | None = None
    fair: bool | None = None
    unfair_reasons: list[str] = field(default_factory=list)
    waited_s: float = 0.0  # for a quiet, cool machine before it started
    unsettled: str | None = None  # why the machine was not quiet or cool when it started anyway
    machine_energy_j: float | None = None  # the whole machine's over the trial's window (with pids)
    window_s: float | None = None  # the trial's window as the service measured it
    conditions: dict[str, Any] | None = None  # as the service judged them (docs/conditions.md)
    measurer_energy_j: float | None = None  # what tsstats itself used over the trial's window
    measurer_machine_j: float | None = None  # the machine's energy over that same window


@dataclass
class Result:
    """A contender's figures: the trials used and those left out as unfair, time and energy described (energy
    None when a used trial has none), and the energy values described (per item or per run)."""

    name: str
    command: list[str] | None
    used: list[Trial]
    excluded: list[Trial]
    time: Description
    energy: Description | None
    energies: list[float] = field(default_factory=list)
    net: Description | None = None  # energy net of the idle power over each trial's time, where measured
    nets: list[float] = field(default_factory=list)


class Study:
    """The trials of a study, run one at a time, each measured by the service while it answers."""

    def __init__(self, contenders: list[Contender], options: StudyOptions, service: ServiceClient,
                 who: str = "tsstats"):
        self.contenders, self.options = contenders, options
        self.named = [(contender.name, contender.command) for contender in contenders]  # as ``analyse`` takes them
        self.service: ServiceClient | None = service
        self.who = who  # how its messages start
        self.unmeasured_reason: str | None = None
        self.trials: list[Trial] = []
        self.label = options.study or f"study {time.strftime('%Y-%m-%dT%H:%M:%S')}"
        self.watching = options.max_wait > 0  # the service answers GET /api/conditions
        self.reference: dict[str, Any] | None = None  # the study's first quiet reading: its temperatures
        self.idle_w: float | None = None  # the machine's idle power, when measured
        self.idle_note = ""  # how it was measured, or why it was not
        self.said_unsettled = False  # a wait that ran out was said once

    # -- waiting for a quiet, cool machine ------------------------------------------------------------------
    def settle(self) -> tuple[float, str | None]:
        """Wait, up to ``max_wait``, for a reading taken since now that finds the machine quiet and cool: the
        seconds waited, and why it was not (None: it was, or nothing could tell)."""
        if self.service is None or not self.watching:
            return 0.0, None
        started, since_ms, why = time.monotonic(), time.time() * 1000.0, None
        while True:
            try:
                reading = self.service.call("GET", "/api/conditions")
            except ServiceRefused as error:
                if error.status != 503:  # a service without the route, or refusing it: do not wait
                    self.watching = False
                    return time.monotonic() - started, None
                reading = None
            except ServiceUnreachable:
                return time.monotonic() - started, None
            if isinstance(reading, dict) and float(reading.get("takenAtMs") or 0) >= since_ms:
                why = self._unsettled(reading)
                if why is None:
                    if self.reference is None:
                        self.reference = reading
                    return time.monotonic() - started, None
            waited = time.monotonic() - started
            if waited >= self.options.max_wait:
                why = why or "no reading of the machine"
                if not self.said_unsettled:
                    self.said_unsettled = True
                    say(f"{self.who}: the machine was not quiet and cool within {self.options.max_wait:g} s "
                        f"({why}); the trial runs anyway, and so may the next ones (each waits as long: "
                        f"--max-wait, or max_wait=, sets it)")
                return waited, why
            time.sleep(POLL_S)

    def _unsettled(self, reading: dict[str, Any]) -> str | None:
        """Why ``reading`` is not a quiet, cool machine, or None."""
        if reading.get("quiet") is False:
            limit = (reading.get("limits") or {}).get("contentionPct")
            return f"contention {float(reading.get('contentionPct') or 0):.0f} % > {limit} %"
        if self.reference is None:
            return None
        pairs = [("cpu", reading.get("cpuTemperatureC"), self.reference.get("cpuTemperatureC"))]
        now_gpus, first_gpus = reading.get("gpuTemperatureC") or {}, self.reference.get("gpuTemperatureC") or {}
        pairs += [(f"gpu {index}", now_gpus.get(index), first_gpus.get(index)) for index in sorted(now_gpus)]
        for what, now, first in pairs:
            if isinstance(now, (int, float)) and isinstance(first, (int, float)) and now > first + COOL_MARGIN_C:
                return f"{what} at {now:.0f} °C, above {first:.0f} + {COOL_MARGIN_C:g} °C of the first quiet reading"
        return None

    def measure_idle(self) -> None:
        """The machine's idle power over ``idle_baseline`` seconds: a run naming no process, alone, is given
        the machine's whole energy (docs/tracking.md)."""
        seconds = self.options.idle_baseline
        if seconds <= 0 or self.service is None:
            return
        body = {"name": f"{self.label} idle baseline"[:200], "models": ["idle baseline"], "status": "running",
                "metadata": {"study": self.label, "idleBaseline": True}}
        try:
            record = self.service.call("POST", "/api/comparisons", body)
            time.sleep(seconds)
            finished = self.service.call("PATCH", f"/api/comparisons/{record['id']}", {"status": "completed"})
        except (ServiceUnreachable, ServiceRefused) as error:
            self.idle_note = f"not measured: {error}"
            return
        energy, duration = finished.get("energyJ"), finished.get("durationS")
        if energy is None or not duration:
            self.idle_note = "not measured: the service gave no energy for it"
            return
        self.idle_w = float(energy) / float(duration)
        methods = finished.get("methods") or {}
        self.idle_note = (f"{self.idle_w:.4g} W over {float(duration):.3g} s before the study "
                          f"({', '.join(f'{part} {how}' for part, how in methods.items()) or 'methods unknown'})")

    def run_trial(self, index: int, number: int) -> Trial:
        waited, unsettled = self.settle()
        record = self._start(index, number, waited)
        started = time.monotonic()
        try:
            code = self.contenders[index].run_once()
        except KeyboardInterrupt:
            self._finish(record, "cancelled", "interrupted")
            raise
        except BaseException as error:
            self._finish(record, "failed", f"{type(error).__name__}: {error}"[:4000])
            raise
        trial = Trial(index, number, time.monotonic() - started, code, waited_s=waited, unsettled=unsettled)
        finished = self._finish(record, "completed" if code == 0 else "failed",
                                None if code == 0 else f"exit status {code}")
        if finished is not None:
            energy = finished.get("energyJ")
            trial.energy_j = float(energy) if energy is not None else None
            trial.record_id, trial.fair = finished.get("id"), finished.get("fair")
            machine, window = finished.get("machineEnergyJ"), finished.get("durationS")
            trial.machine_energy_j = float(machine) if machine is not None else None
            trial.conditions = finished.get("conditions")
            trial.window_s = float(window) if window is not None else None
            trial.unfair_reasons = list(finished.get("unfairReasons") or [])
            trial.measurer_energy_j, trial.measurer_machine_j = measurer_of(finished.get("measurer"))
        self.trials.append(trial)
        return trial

    def _start(self, index: int, number: int, waited: float) -> dict[str, Any] | None:
        if self.service is None:
            return None
        name = self.contenders[index].name
        body: dict[str, Any] = {"name": f"{name} #{number or 'warm-up'}"[:200], "models": [name[:200]],
                                "status": "running", "pids": [os.getpid()],
                                "metadata": {"study": self.label, "command": name, "trial": number,
                                             "warmup": number == 0, "waitedS": round(waited, 3)}}
        if self.options.items is not None:
            body["items"] = self.options.items
        try:
            return self.service.call("POST", "/api/comparisons", body)
        except ServiceUnreachable as error:
            self.unmeasured_reason = str(error)
        except ServiceRefused as error:
            self.unmeasured_reason = f"the service refused the trial: {error}"
        say(f"{self.who}: {self.unmeasured_reason}; energy is not measured, the trials are timed")
        self.service = None
        return None

    def _finish(self, record: dict[str, Any] | None, status: str, error: str | None) -> dict[str, Any] | None:
        if record is None or self.service is None:
            return None
        body: dict[str, Any] = {"status": status, **({"error": error} if error else {})}
        try:
            return self.service.call("PATCH", f"/api/comparisons/{record['id']}", body)
        except (ServiceUnreachable, ServiceRefused) as problem:
            say(f"{self.who}: {problem}; this trial's energy is missing")
            return None

    def run(self) -> tuple[str, bool]:
        """Warm-up trials, then rounds in a shuffled order until ``options`` say stop: (why it stopped, whether a
        trial failed). KeyboardInterrupt propagates; the trials done stay."""
        order = random.Random(self.options.seed)
        count = len(self.contenders)
        if self.options.idle_baseline > 0:
            self.settle()
            self.measure_idle()
        for _ in range(self.options.warmup):
            for index in order.sample(range(count), count):
                if self.run_trial(index, 0).exit_code != 0:
                    return "stopped in the warm-up: a trial failed", True
        rounds = 0
        while True:
            rounds += 1
            for index in order.sample(range(count), count):
                for _ in range(1 + (0 if self.options.allow_unfair else self.options.retries)):
                    trial = self.run_trial(index, rounds)
                    if trial.exit_code != 0:
                        return f"stopped in round {rounds}: a trial failed", True
                    if trial.fair is not False:
                        break  # an unfair one is run again, up to ``retries`` times
            stopped = done(self, rounds)
            if stopped:
                return stopped, False

    # -- the statistics --------------------------------------------------------------------------------
    def per_unit(self, trial: Trial) -> float | None:
        if trial.energy_j is None:
            return None
        return trial.energy_j / self.options.items if self.options.items else trial.energy_j

    def results(self) -> tuple[list[Result], str | None]:
        """The figures (``analyse_or_say``) and, where every trial of a command was unfair, why."""
        return analyse_or_say(self.named, self.trials, self.per_unit, self.options.allow_unfair, self.idle_w)


def analyse(contenders: list[tuple[str, list[str] | None]], trials: list[Trial],
            unit_energy: Callable[[Trial], float | None], allow_unfair: bool,
            idle_w: float | None = None) -> list[Result]:
    """Each contender's figures from its measured trials (``number`` above 0); those judged unfair are left out
    unless ``allow_unfair``; ``unit_energy``: a trial's energy per item (or per run). With ``idle_w``, also the
    energy net of the idle power over each trial's time, per item (or per run) alike."""
    found = []
    for index, (name, command) in enumerate(contenders):
        measured = [trial for trial in trials if trial.command == index and trial.number > 0]
        used = [trial for trial in measured if trial.fair is not False or allow_unfair]
        excluded = [trial for trial in measured if trial not in used]
        energies = [value for trial in used if (value := unit_energy(trial)) is not None]
        complete = bool(energies) and len(energies) == len(used)
        nets = [unit_energy(replace(trial, energy_j=net_of_idle(trial, idle_w))) or 0.0
                for trial in used] if complete and idle_w is not None else []
        found.append(Result(name, command, used, excluded, describe([trial.wall_s for trial in used]),
                            describe(energies) if complete else None, energies if complete else [],
                            describe(nets) if nets else None, nets))
    return found


def analyse_or_say(contenders: list[tuple[str, list[str] | None]], trials: list[Trial],
                   unit_energy: Callable[[Trial], float | None], allow_unfair: bool,
                   idle_w: float | None = None) -> tuple[list[Result], str | None]:
    """``analyse``, and where every trial of a contender was judged unfair, the figures of all the trials and
    why, said plainly (None when there was a fair trial of each)."""
    results = analyse(contenders, trials, unit_energy, allow_unfair, idle_w)
    if all(result.used for result in results):
        return results, None
    excluded = [trial for result in results for trial in result.excluded]
    never_quiet = (f"every trial of {', '.join(repr(result.name) for result in results if not result.used)} was "
                   f"judged unfair ({unfair_kinds(excluded)})")
    return analyse(contenders, trials, unit_energy, True, idle_w), never_quiet


def net_of_idle(trial: Trial, idle_w: float) -> float:
    """What the machine used above its idle power while the trial ran: the whole machine's energy over the
    trial's window (its processes' share where the service gave no machine figure) less the idle power over
    that window. Not clamped: below 0, the trial used less than the idle baseline did."""
    energy = trial.machine_energy_j if trial.machine_energy_j is not None else (trial.energy_j or 0.0)
    return energy - idle_w * (trial.window_s if trial.window_s is not None else trial.wall_s)


def ranked(results: list[Result], quantity: str) -> tuple[int, list[tuple[int, Ratio]]] | None:
    """The index of the command with the least mean of ``quantity`` ('energy', 'net' (energy net of idle) or
    'time'), and each other's ratio to it; None where a command lacks it, or a net mean is not above 0."""
    values = {index: [trial.wall_s for trial in result.used] if quantity == "time" else
              result.nets if quantity == "net" else result.energies for index, result in enumerate(results)}
    described = {index: result.time if quantity == "time" else result.net if quantity == "net" else result.energy
                 for index, result in enumerate(results)}
    if any(description is None or description.n == 0 or not description.mean > 0
           for description in described.values()):
        return None
    best = min(described, key=lambda index: described[index].mean)  # type: ignore[union-attr]
    return best, [(index, ratio(values[best], values[index])) for index in described if index != best]


# -- what is printed --------------------------------------------------------------------------------------
def quantity_text(value: float, unit: str) -> str:
    """A value in the unit with the SI prefix that reads best (``1.63 kJ``, ``93.6 mJ``, ``1.234 s``)."""
    if value is None or math.isnan(value):
        return "–"
    for factor, prefix in ((1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ")):
        if abs(value) >= factor or factor == 1e-6:
            return f"{value / factor:.4g} {prefix}{unit}"
    return f"{value:.4g} {unit}"


LABEL_WIDTH = 44  # the report's first column, as wide as its longest label


def description_lines(label: str, description: Description, unit: str) -> list[str]:
    text = lambda value: quantity_text(value, unit)  # noqa: E731
    interval = f"[95 % CI {text(description.ci_low)} … {text(description.ci_high)}]" if description.n > 1 else ""
    return [f"  {label + ' (mean ± σ):':{LABEL_WIDTH}s}{text(description.mean)} ± {text(description.stdev)}    "
            f"{interval}".rstrip(),
            f"  {'Range (min … max):':{LABEL_WIDTH}s}{text(description.minimum)} … {text(description.maximum)}"]


def report(results: list[Result], stopped: str, per_item: bool, unmeasured: str | None = None,
           never_quiet: str | None = None, idle_note: str = "") -> list[str]:
    """The lines a reader reads first, as hyperfine prints them: each contender's figures, the ratios with their
    verdicts, the warnings; ``unmeasured``: why there is no energy, where there is none; ``never_quiet``: why
    every trial of a command was unfair (the figures then include the unfair trials); ``idle_note``: the idle
    baseline, measured or why not."""
    unit_name = "Energy per item" if per_item else "Energy per run"
    lines = []
    if idle_note:
        lines += [f"Idle baseline: {idle_note}", ""]
    for number, result in enumerate(results, start=1):
        lines.append(f"Command {number}: {result.name}")
        if result.energy is not None:
            lines += description_lines(unit_name + " as measured", result.energy, "J")
        if result.net is not None:
            lines += description_lines(unit_name + " net of idle", result.net, "J")[:1]
        lines += description_lines("Time", result.time, "s")
        left_out = f", {len(result.excluded)} excluded as unfair ({unfair_kinds(result.excluded)})" \
            if result.excluded else ""
        unfair_kept = [trial for trial in result.used if trial.fair is False]
        kept = f" ({len(unfair_kept)} judged unfair: {unfair_kinds(unfair_kept)})" if unfair_kept else ""
        lines.append(f"  {'Runs:':{LABEL_WIDTH}s}{len(result.used)} used{kept}{left_out}")
        lines += waited_lines(result.used + result.excluded)
        lines.append("")
    lines += measurer_lines(results)
    if never_quiet:
        lines += [f"The machine was never quiet: {never_quiet}. The figures above and below include those unfair "
                  f"trials: they are not a fair comparison. Run on a quieter machine (docs/conditions.md).", ""]
    lines.append(f"Summary ({stopped}; intervals are 95 %; verdicts by Welch's t-test at the {ALPHA * 100:g} % level)")
    for quantity, least, times in (
            ("energy", f"used the least {unit_name.lower()}", f"times the {unit_name.lower()}"),
            ("net", f"used the least {unit_name.lower()} net of idle", f"times the {unit_name.lower()} net of idle"),
            ("time", "ran fastest", "times as long")):
        found = ranked(results, quantity)
        if found is None:
            if quantity == "energy":
                lines.append(f"  energy was not measured ({unmeasured or 'no figures from the service'})")
            if quantity == "net" and all(result.net is not None for result in results):
                lines.append("  energy net of idle: no ratio, a mean is not above 0 (the idle power measured before "
                             "the study is above what a command used)")
            continue
        best, others = found
        lines.append(f"  {results[best].name!r} {least}")
        for index, found_ratio in others:
            verdict = "significant" if found_ratio.significant else "not significant"
            lines.append(f"    {found_ratio.value:.2f} ± {found_ratio.spread:.2f} {times}: {results[index].name!r} "
                         f"(95 % CI {found_ratio.ci_low:.2f}–{found_ratio.ci_high:.2f}; {verdict}, "
                         f"p = {found_ratio.p:.2g})")
    warnings = warning_lines(results)
    if warnings:
        lines.append("")
        lines += warnings
    return lines


def measurer_of(kept: dict[str, Any] | None) -> tuple[float | None, float | None]:
    """(what tsstats itself used, the machine's energy) over a trial's window, from its record's ``measurer``."""
    if not isinstance(kept, dict) or kept.get("energyJ") is None or kept.get("machineEnergyJ") is None:
        return None, None
    return float(kept["energyJ"]), float(kept["machineEnergyJ"])


def measurer_share(trials: list[Trial]) -> dict[str, float] | None:
    """What tsstats itself used of the machine's energy over the windows of the trials that say (the measurer's
    footprint beside the measured work); None where none says."""
    pairs = [(trial.measurer_energy_j, trial.measurer_machine_j) for trial in trials
             if trial.measurer_energy_j is not None and trial.measurer_machine_j is not None]
    machine_j = sum(machine for _, machine in pairs)
    if not pairs or machine_j <= 0:
        return None
    energy_j = sum(energy for energy, _ in pairs)
    return {"energyJ": energy_j, "machineEnergyJ": machine_j, "sharePct": 100.0 * energy_j / machine_j,
            "trials": len(pairs)}


def measurer_lines(results: list[Result]) -> list[str]:
    share = measurer_share([trial for result in results for trial in result.used + result.excluded])
    if share is None:
        return []
    return [f"tsstats itself used {share['sharePct']:.3g} % of the machine's energy over the trials' windows "
            f"({quantity_text(share['energyJ'], 'J')} of {quantity_text(share['machineEnergyJ'], 'J')}, "
            f"{share['trials']} trials)", ""]


def unfair_kinds(trials: list[Trial]) -> str:
    """Why trials were judged unfair, by kind with how many: ``contention 62-69 % > 10 % (5 trials)``."""
    kinds: dict[str, list[str]] = {}
    for trial in trials:
        for reason in trial.unfair_reasons:
            kinds.setdefault(reason.split(" ")[0], []).append(reason)
    return "; ".join(f"{reasons[0] if len(set(reasons)) == 1 else min(reasons) + ' to ' + max(reasons)} "
                     f"({len(reasons)} trials)" for reasons in kinds.values()) or "no reason given"


def waited_lines(trials: list[Trial]) -> list[str]:
    """How long its trials waited for a quiet, cool machine, and those that started without one."""
    waits = [trial.waited_s for trial in trials]
    if not any(waits):
        return []
    unsettled = [trial.unsettled for trial in trials if trial.unsettled]
    without = f"; {len(unsettled)} started without one ({min(unsettled)})" if unsettled else ""
    return [f"  {'Waited for a quiet machine:':{LABEL_WIDTH}s}{sum(waits):.3g} s in all, {max(waits):.3g} s at most"
            f"{without}"]


def warning_lines(results: list[Result]) -> list[str]:
    found = []
    for result in results:
        times = [trial.wall_s for trial in result.used]
        odd = outliers(times)
        if odd:
            found.append(f"Warning: {len(odd)} statistical outlier(s) in the time of {result.name!r} (modified "
                         f"Z-score above {OUTLIER_Z}: {', '.join(f'{times[i]:.3g} s' for i in odd)}). Other work "
                         f"on the machine may have disturbed them: run on a quieter machine, or with more runs.")
        if slow_first(times):
            found.append(f"Warning: the first measured trial of {result.name!r} took {times[0]:.3g} s, more than "
                         f"{SLOW_FIRST:g} times the median of the others: caches filled by it? Use --warmup.")
        for label, description in (("time", result.time), ("energy", result.energy)):
            if description is not None and description.n > 1 and description.relative_spread > WIDE_SPREAD:
                found.append(f"Warning: σ is {description.relative_spread:.0%} of the mean {label} of "
                             f"{result.name!r} (above {WIDE_SPREAD:.0%}): add runs (--runs, or --runs auto) or "
                             f"quiet the machine.")
    return found


# -- the exports --------------------------------------------------------------------------------------------
def study_json(study: Study, results: list[Result], stopped: str) -> dict[str, Any]:
    return study_document(study.label, study.options.seed, study.options.items, results, stopped, study.idle_w,
                          study.idle_note)


def study_document(label: str, seed: int | None, items: float | None, results: list[Result],
                   stopped: str, idle_w: float | None = None, idle_note: str = "") -> dict[str, Any]:
    """The study as the exports and the service give it: each contender's figures and trials, and the ratios;
    ``energy`` is as measured, ``energyNetOfIdle`` less the idle power over each trial's time (null without an
    idle baseline)."""
    def ratios(quantity: str) -> list[dict[str, Any]]:
        found = ranked(results, quantity)
        if found is None:
            return []
        best, others = found
        return [{"base": results[best].name, "other": results[index].name, **asdict(value)}
                for index, value in others]

    return {"study": label, "seed": seed, "items": items, "stopped": stopped,
            "energyUnit": "J per item" if items else "J per run", "timeUnit": "s",
            "idleBaseline": {"powerW": idle_w, "how": idle_note} if idle_note else None,
            "commands": [{"name": result.name, "command": result.command,
                          "time": asdict(result.time), "energy": asdict(result.energy) if result.energy else None,
                          "energyNetOfIdle": asdict(result.net) if result.net else None,
                          "trials": [asdict(trial) for trial in result.used],
                          "excluded": [asdict(trial) for trial in result.excluded]} for result in results],
            "ratios": {"energy": ratios("energy"), "energyNetOfIdle": ratios("net"), "time": ratios("time")},
            "measurer": measurer_share([trial for result in results for trial in result.used + result.excluded])}


def write_exports(document: dict[str, Any], json_path: str | None = None, csv_path: str | None = None,
                  markdown_path: str | None = None) -> None:
    """Write the study (``study_json``) as JSON (every trial and figure), CSV (a row per contender) or a Markdown
    table, to the paths given."""
    if json_path:
        with open(json_path, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, default=lambda value: None)
    if csv_path:
        with open(csv_path, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            parts = ("mean", "stdev", "ci_low", "ci_high", "minimum", "maximum")
            writer.writerow(["command", "runs", "excluded", *(f"time_{part}_s" for part in parts),
                             *(f"energy_{part}_J" for part in parts), *(f"energy_net_{part}_J" for part in parts)])
            for command in document["commands"]:
                energy, net = command["energy"] or {}, command["energyNetOfIdle"] or {}
                writer.writerow([command["name"], command["time"]["n"], len(command["excluded"]),
                                 *(command["time"][part] for part in parts), *(energy.get(part) for part in parts),
                                 *(net.get(part) for part in parts)])
    if markdown_path:
        ratios = {entry["other"]: entry for entry in document["ratios"]["energy"]}
        times = {entry["other"]: entry for entry in document["ratios"]["time"]}
        rows = ["| Command | Energy (J) | Time (s) | Relative energy | Relative time |", "|:---|---:|---:|---:|---:|"]
        for command in document["commands"]:
            energy = command["energy"]
            energy_text = f"{energy['mean']:.4g} ± {energy['stdev']:.2g}" if energy else "–"
            relative = lambda found: f"{found['value']:.2f} ± {found['spread']:.2f}" if found else "1.00"  # noqa: E731
            rows.append(f"| `{command['name']}` | {energy_text} | {command['time']['mean']:.4g} ± "
                        f"{command['time']['stdev']:.2g} | {relative(ratios.get(command['name']))} | "
                        f"{relative(times.get(command['name']))} |")
        with open(markdown_path, "w", encoding="utf-8") as out:
            out.write("\n".join(rows) + "\n")


def done(study: Study, rounds: int) -> str:
    """Why the study stops after ``rounds`` rounds, or "" to run another."""
    options = study.options
    if options.runs != "auto":
        return f"{rounds} runs each" if rounds >= int(options.runs) else ""
    if rounds < options.min_runs:
        return ""
    results = analyse(study.named, study.trials, study.per_unit, options.allow_unfair, study.idle_w)
    found = ranked(results, "energy") or ranked(results, "time")
    widest = max((found_ratio.relative_half_width for _, found_ratio in found[1]), default=0.0) if found else 0.0
    if widest * 100.0 <= options.target_ci:
        return f"--runs auto: every ratio within ±{options.target_ci:g} % after {rounds} runs each"
    if rounds >= options.max_runs:
        return (f"--runs auto: stopped at --max-runs {options.max_runs}, the widest ratio interval ±{widest:.1%} "
                f"(target ±{options.target_ci:g} %)")
    return ""


@dataclass
class StudyResult:
    """What ``tsstats.compare`` returns: each contender's figures (``results``), the ratios to the least energy
    and time (``ratios``: as ``as_dict()["ratios"]``), why it stopped, the printed report and the document the
    exports write."""

    results: list[Result]
    stopped: str
    lines: list[str]
    document: dict[str, Any]
    fair: bool = True  # False: every trial of a command was unfair, and the figures include them

    @property
    def ratios(self) -> dict[str, list[dict[str, Any]]]:
        return self.document["ratios"]

    def as_dict(self) -> dict[str, Any]:
        return self.document

    def __str__(self) -> str:
        return "\n".join(self.lines)


def finish_study(study: Study, stopped: str) -> StudyResult:
    """The figures and the report; where every trial of a command was judged unfair, the figures of all the
    trials, said plainly (``StudyResult.fair`` is then False)."""
    results, never_quiet = study.results()
    lines = report(results, stopped, bool(study.options.items), study.unmeasured_reason, never_quiet,
                   study.idle_note)
    document = study_json(study, results, stopped)
    document["neverQuiet"] = never_quiet
    return StudyResult(results, stopped, lines, document, fair=never_quiet is None)


def _call(function: Callable[[], Any]) -> Callable[[], int]:
    def once() -> int:
        function()
        return 0

    return once


def compare(contenders: dict[str, Callable[[], Any]], runs: int | str = 10, warmup: int = 1,
            items: float | None = None, seed: int | None = None, *, study: str | None = None,
            allow_unfair: bool = False, min_runs: int = 5, max_runs: int = 30, target_ci: float = 5.0,
            max_wait: float = 30.0, retries: int = 2, idle_baseline: float = 0.0,
            url: str | None = None, token: str | None = None, token_file: str | None = None,
            quiet: bool = False) -> StudyResult:
    """Compare callables in this process as ``tsstats compare`` compares commands: ``warmup`` trials of each,
    then ``runs`` rounds (or "auto") in a shuffled order (``seed``), each trial a run of the service naming this
    process; returns the figures and prints the report unless ``quiet``. Before each trial it waits up to
    ``max_wait`` seconds for a quiet, cool machine; an unfair trial is run again up to ``retries`` times;
    ``idle_baseline`` seconds of idle power are measured first where given (energy then also net of it). A
    callable that raises stops the study
    and the exception is raised on (its trial is recorded failed). Without a service the trials are timed."""
    if not isinstance(contenders, dict) or len(contenders) < 2:
        raise ValueError("compare needs a dict of two or more named callables")
    for name, function in contenders.items():
        if not isinstance(name, str) or not name or not callable(function):
            raise ValueError(f"each contender is a non-empty name and a callable, not {name!r}: {function!r}")
    if runs != "auto" and (isinstance(runs, bool) or not isinstance(runs, int) or runs < 1):
        raise ValueError(f"runs must be auto or a whole number of at least 1, not {runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a whole number of at least 0, not {warmup!r}")
    for name, value, high in (("max_wait", max_wait, 3600), ("retries", retries, 100),
                              ("idle_baseline", idle_baseline, 3600)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
            raise ValueError(f"{name} must be a number from 0 to {high}, not {value!r}")
    options = StudyOptions(runs=runs, warmup=warmup, items=items, seed=seed, allow_unfair=allow_unfair,
                           study=study, min_runs=min_runs, max_runs=max_runs, target_ci=target_ci,
                           max_wait=float(max_wait), retries=int(retries), idle_baseline=float(idle_baseline))
    running = Study([Contender(name, None, _call(function)) for name, function in contenders.items()], options,
                    ServiceClient.from_environment(url, token, token_file), who="tsstats.compare")
    try:
        stopped, _ = running.run()
    except KeyboardInterrupt:
        stopped = "cancelled with Ctrl-C: the trials done so far"
    result = finish_study(running, stopped)
    if not quiet:
        print(result)
    return result
