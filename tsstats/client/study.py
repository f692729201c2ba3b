"""A study: contenders (commands, or callables in this process) over warm-up trials and rounds in a shuffled order,
each trial a run measured by the service, and what a reviewer reads of it: each contender's energy and time with
spread and 95 % intervals, each ratio to the least with its interval and a verdict, the warnings, and exports as
JSON, CSV and Markdown. ``tsstats compare`` (the command line) runs commands through it, ``tsstats.compare`` runs
callables. Standard library only; the statistics are ``tsstats.client.statistics``. Runs on the caller's thread.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tsstats.client.service import Service, ServiceRefused, ServiceUnreachable, say
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


class Study:
    """The trials of a study, run one at a time, each measured by the service while it answers."""

    def __init__(self, contenders: list[Contender], options: StudyOptions, service: Service, who: str = "tsstats"):
        self.contenders, self.options = contenders, options
        self.service: Service | None = service
        self.who = who  # how its messages start
        self.unmeasured_reason: str | None = None
        self.trials: list[Trial] = []
        self.label = options.study or f"study {time.strftime('%Y-%m-%dT%H:%M:%S')}"

    def run_trial(self, index: int, number: int) -> Trial:
        record = self._start(index, number)
        started = time.monotonic()
        try:
            code = self.contenders[index].run_once()
        except KeyboardInterrupt:
            self._finish(record, "cancelled", "interrupted")
            raise
        except BaseException as error:
            self._finish(record, "failed", f"{type(error).__name__}: {error}"[:4000])
            raise
        trial = Trial(index, number, time.monotonic() - started, code)
        finished = self._finish(record, "completed" if code == 0 else "failed",
                                None if code == 0 else f"exit status {code}")
        if finished is not None:
            energy = finished.get("energyJ")
            trial.energy_j = float(energy) if energy is not None else None
            trial.record_id, trial.fair = finished.get("id"), finished.get("fair")
            trial.unfair_reasons = list(finished.get("unfairReasons") or [])
        self.trials.append(trial)
        return trial

    def _start(self, index: int, number: int) -> dict[str, Any] | None:
        if self.service is None:
            return None
        name = self.contenders[index].name
        body: dict[str, Any] = {"name": f"{name} #{number or 'warm-up'}"[:200], "models": [name[:200]],
                                "status": "running", "pids": [os.getpid()],
                                "metadata": {"study": self.label, "command": name, "trial": number,
                                             "warmup": number == 0}}
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
        for _ in range(self.options.warmup):
            for index in order.sample(range(count), count):
                if self.run_trial(index, 0).exit_code != 0:
                    return "stopped in the warm-up: a trial failed", True
        rounds = 0
        while True:
            rounds += 1
            for index in order.sample(range(count), count):
                if self.run_trial(index, rounds).exit_code != 0:
                    return f"stopped in round {rounds}: a trial failed", True
            stopped = done(self, rounds)
            if stopped:
                return stopped, False

    # -- the statistics --------------------------------------------------------------------------------
    def per_unit(self, trial: Trial) -> float | None:
        if trial.energy_j is None:
            return None
        return trial.energy_j / self.options.items if self.options.items else trial.energy_j

    def results(self) -> list[Result]:
        return analyse([(contender.name, contender.command) for contender in self.contenders], self.trials,
                       self.per_unit, self.options.allow_unfair)


def analyse(contenders: list[tuple[str, list[str] | None]], trials: list[Trial],
            unit_energy: Callable[[Trial], float | None], allow_unfair: bool) -> list[Result]:
    """Each contender's figures from its measured trials (``number`` above 0); those judged unfair are left out
    unless ``allow_unfair``; ``unit_energy``: a trial's energy per item (or per run)."""
    found = []
    for index, (name, command) in enumerate(contenders):
        measured = [trial for trial in trials if trial.command == index and trial.number > 0]
        used = [trial for trial in measured if trial.fair is not False or allow_unfair]
        excluded = [trial for trial in measured if trial not in used]
        energies = [value for trial in used if (value := unit_energy(trial)) is not None]
        complete = bool(energies) and len(energies) == len(used)
        found.append(Result(name, command, used, excluded, describe([trial.wall_s for trial in used]),
                            describe(energies) if complete else None, energies if complete else []))
    return found


def ranked(results: list[Result], quantity: str) -> tuple[int, list[tuple[int, Ratio]]] | None:
    """The index of the command with the least mean of ``quantity`` ('energy' or 'time'), and each other's ratio
    to it."""
    values = {index: [trial.wall_s for trial in result.used] if quantity == "time" else result.energies
              for index, result in enumerate(results)}
    described = {index: (result.time if quantity == "time" else result.energy) for index, result in enumerate(results)}
    if any(description is None or description.n == 0 for description in described.values()):
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


def description_lines(label: str, description: Description, unit: str) -> list[str]:
    text = lambda value: quantity_text(value, unit)  # noqa: E731
    interval = f"[95 % CI {text(description.ci_low)} … {text(description.ci_high)}]" if description.n > 1 else ""
    return [f"  {label + ' (mean ± σ):':32s}{text(description.mean)} ± {text(description.stdev)}    {interval}",
            f"  {'Range (min … max):':32s}{text(description.minimum)} … {text(description.maximum)}"]


def report(results: list[Result], stopped: str, per_item: bool, unmeasured: str | None = None) -> list[str]:
    """The lines a reader reads first, as hyperfine prints them: each contender's figures, the ratios with their
    verdicts, the warnings; ``unmeasured``: why there is no energy, where there is none."""
    unit_name = "Energy per item" if per_item else "Energy per run"
    lines = []
    for number, result in enumerate(results, start=1):
        lines.append(f"Command {number}: {result.name}")
        if result.energy is not None:
            lines += description_lines(unit_name, result.energy, "J")
        lines += description_lines("Time", result.time, "s")
        left_out = f", {len(result.excluded)} excluded as unfair ({unfair_kinds(result.excluded)})" \
            if result.excluded else ""
        lines.append(f"  {'Runs:':32s}{len(result.used)} used{left_out}")
        lines.append("")
    if not all(result.used for result in results):
        excluded = [trial for result in results for trial in result.excluded]
        lines.append(f"Nothing to compare: every trial of {', '.join(repr(r.name) for r in results if not r.used)} was "
                     f"judged unfair ({unfair_kinds(excluded)}): the machine was never quiet enough. Run on a "
                     f"quieter machine, or keep the trials with --allow-unfair (docs/conditions.md).")
        return lines
    lines.append(f"Summary ({stopped}; intervals are 95 %; verdicts by Welch's t-test at the {ALPHA * 100:g} % level)")
    for quantity, least, times in (("energy", f"used the least {unit_name.lower()}", f"times the "
                                   f"{unit_name.lower()}"), ("time", "ran fastest", "times as long")):
        found = ranked(results, quantity)
        if found is None:
            if quantity == "energy":
                lines.append(f"  energy was not measured ({unmeasured or 'no figures from the service'})")
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


def unfair_kinds(trials: list[Trial]) -> str:
    """Why trials were judged unfair, by kind with how many: ``contention 62-69 % > 10 % (5 trials)``."""
    kinds: dict[str, list[str]] = {}
    for trial in trials:
        for reason in trial.unfair_reasons:
            kinds.setdefault(reason.split(" ")[0], []).append(reason)
    return "; ".join(f"{reasons[0] if len(set(reasons)) == 1 else min(reasons) + ' to ' + max(reasons)} "
                     f"({len(reasons)} trials)" for reasons in kinds.values()) or "no reason given"


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
    return study_document(study.label, study.options.seed, study.options.items, results, stopped)


def study_document(label: str, seed: int | None, items: float | None, results: list[Result],
                   stopped: str) -> dict[str, Any]:
    """The study as the exports and the service give it: each contender's figures and trials, and the ratios."""
    def ratios(quantity: str) -> list[dict[str, Any]]:
        found = ranked(results, quantity)
        if found is None:
            return []
        best, others = found
        return [{"base": results[best].name, "other": results[index].name, **asdict(value)}
                for index, value in others]

    return {"study": label, "seed": seed, "items": items, "stopped": stopped,
            "energyUnit": "J per item" if items else "J per run", "timeUnit": "s",
            "commands": [{"name": result.name, "command": result.command,
                          "time": asdict(result.time), "energy": asdict(result.energy) if result.energy else None,
                          "trials": [asdict(trial) for trial in result.used],
                          "excluded": [asdict(trial) for trial in result.excluded]} for result in results],
            "ratios": {"energy": ratios("energy"), "time": ratios("time")}}


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
                             *(f"energy_{part}_J" for part in parts)])
            for command in document["commands"]:
                energy = command["energy"] or {}
                writer.writerow([command["name"], command["time"]["n"], len(command["excluded"]),
                                 *(command["time"][part] for part in parts), *(energy.get(part) for part in parts)])
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
    results = study.results()
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

    @property
    def ratios(self) -> dict[str, list[dict[str, Any]]]:
        return self.document["ratios"]

    def as_dict(self) -> dict[str, Any]:
        return self.document

    def __str__(self) -> str:
        return "\n".join(self.lines)


def finish_study(study: Study, stopped: str) -> StudyResult:
    results = study.results()
    return StudyResult(results, stopped, report(results, stopped, bool(study.options.items), study.unmeasured_reason),
                       study_json(study, results, stopped))


def _call(function: Callable[[], Any]) -> Callable[[], int]:
    def once() -> int:
        function()
        return 0

    return once


def compare(contenders: dict[str, Callable[[], Any]], runs: int | str = 10, warmup: int = 1,
            items: float | None = None, seed: int | None = None, *, study: str | None = None,
            allow_unfair: bool = False, min_runs: int = 5, max_runs: int = 30, target_ci: float = 5.0,
            url: str | None = None, token: str | None = None, token_file: str | None = None,
            quiet: bool = False) -> StudyResult:
    """Compare callables in this process as ``tsstats compare`` compares commands: ``warmup`` trials of each,
    then ``runs`` rounds (or "auto") in a shuffled order (``seed``), each trial a run of the service naming this
    process; returns the figures and prints the report unless ``quiet``. A callable that raises stops the study
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
    options = StudyOptions(runs=runs, warmup=warmup, items=items, seed=seed, allow_unfair=allow_unfair,
                           study=study, min_runs=min_runs, max_runs=max_runs, target_ci=target_ci)
    running = Study([Contender(name, None, _call(function)) for name, function in contenders.items()], options,
                    Service.from_environment(url, token, token_file), who="tsstats.compare")
    try:
        stopped, _ = running.run()
    except KeyboardInterrupt:
        stopped = "cancelled with Ctrl-C: the trials done so far"
    result = finish_study(running, stopped)
    if not quiet:
        print(result)
    return result
