"""``tsstats compare [options] -- CMD_A ... -- CMD_B ...``: a study of two or more commands, as hyperfine runs
them, with each trial measured by the service.

Each command gets ``--warmup`` trials (measured, left out of the statistics), then ``--runs`` rounds in which every
command runs once, in an order shuffled for each round (``--seed`` makes it reproducible): drift of the machine
(heat, caches, other work) spreads over all commands instead of favouring the first. Each trial is a comparison of
the service naming this process (so the command and its children are measured), with the study in its metadata.
``--runs auto`` adds rounds until every ratio's 95 % interval is within ``--target-ci`` % or ``--max-runs`` is
reached. Trials the service judged unfair (docs/conditions.md) are left out of the statistics, and said, unless
``--allow-unfair``. Without a service the commands still run and are timed, with one warning.

It prints, per command, energy per item (or per run) and time as mean ± σ, the 95 % interval and the range,
the runs used and those left out; then the command with the least energy and each other's ratio to it with its
interval and a verdict (Welch's t-test at the 5 % level), and the same for time; then the warnings
(``tsstats.client.statistics``). Exports: ``--export-json``, ``--export-csv``, ``--export-markdown``.
Standard library and ``tsstats.client`` only. Runs on the main thread.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from tsstats.cli.exits import EXIT_FAILURE, EXIT_USAGE
from tsstats.cli.run import NOT_FOUND, keep_standard_descriptors, say
from tsstats.client.service import Service, ServiceRefused, ServiceUnreachable
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

INTERRUPTED = 130
OUTPUT_TAIL_LINES = 20


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
class CommandResult:
    name: str
    command: list[str]
    used: list[Trial]
    excluded: list[Trial]
    time: Description
    energy: Description | None


def split_commands(words: list[str]) -> list[list[str]]:
    """``-- a b -- c d`` as [[a, b], [c, d]]."""
    commands: list[list[str]] = []
    for word in words:
        if word == "--":
            commands.append([])
        elif commands:
            commands[-1].append(word)
        else:
            commands.append([word])
    return [command for command in commands if command]


def runnable(command: list[str]) -> bool:
    program = command[0]
    if os.sep in program:
        return os.path.isfile(program) and os.access(program, os.X_OK)
    return shutil.which(program) is not None


class Study:
    """The trials of a study, run one at a time."""

    def __init__(self, args: argparse.Namespace, commands: list[list[str]], names: list[str], service: Service):
        self.args, self.commands, self.names = args, commands, names
        self.service: Service | None = service
        self.unmeasured_reason: str | None = None
        self.trials: list[Trial] = []
        self.label = args.study or f"compare {time.strftime('%Y-%m-%dT%H:%M:%S')}"

    def run_trial(self, index: int, number: int) -> Trial:
        record = self._start(index, number)
        with tempfile.TemporaryFile() as output:
            started = time.monotonic()
            child = subprocess.Popen(self.commands[index], stdin=subprocess.DEVNULL, stdout=output,
                                     stderr=subprocess.STDOUT)
            try:
                code = child.wait()
            except KeyboardInterrupt:
                child.kill()
                child.wait()
                self._finish(record, "cancelled", "interrupted")
                raise
            wall_s = time.monotonic() - started
            if code != 0:
                output.seek(0)
                tail = output.read().decode("utf-8", "replace").splitlines()[-OUTPUT_TAIL_LINES:]
                say(f"tsstats compare: {self.names[index]!r} exited with status {code}; its last output:")
                for line in tail:
                    say(f"  | {line}")
        trial = Trial(index, number, wall_s, code)
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
        body = {"name": f"{self.names[index]} #{number or 'warm-up'}", "models": [self.names[index][:200]],
                "status": "running", "pids": [os.getpid()],
                "metadata": {"study": self.label, "command": self.names[index], "trial": number,
                             "warmup": number == 0}}
        if self.args.items is not None:
            body["items"] = self.args.items
        try:
            return self.service.call("POST", "/api/comparisons", body)
        except ServiceUnreachable as error:
            self.unmeasured_reason = str(error)
        except ServiceRefused as error:
            self.unmeasured_reason = f"the service refused the trial: {error}"
        say(f"tsstats compare: {self.unmeasured_reason}; energy is not measured, the commands are timed")
        self.service = None
        return None

    def _finish(self, record: dict[str, Any] | None, status: str, error: str | None) -> dict[str, Any] | None:
        if record is None or self.service is None:
            return None
        body: dict[str, Any] = {"status": status, **({"error": error} if error else {})}
        try:
            return self.service.call("PATCH", f"/api/comparisons/{record['id']}", body)
        except (ServiceUnreachable, ServiceRefused) as problem:
            say(f"tsstats compare: {problem}; this trial's energy is missing")
            return None

    # -- the statistics --------------------------------------------------------------------------------
    def per_unit(self, trial: Trial) -> float | None:
        if trial.energy_j is None:
            return None
        return trial.energy_j / self.args.items if self.args.items else trial.energy_j

    def results(self) -> list[CommandResult]:
        found = []
        for index, command in enumerate(self.commands):
            measured = [trial for trial in self.trials if trial.command == index and trial.number > 0]
            used = [trial for trial in measured if trial.fair is not False or self.args.allow_unfair]
            excluded = [trial for trial in measured if trial not in used]
            energies = [value for trial in used if (value := self.per_unit(trial)) is not None]
            found.append(CommandResult(self.names[index], command, used, excluded,
                                       describe([trial.wall_s for trial in used]),
                                       describe(energies) if energies and len(energies) == len(used) else None))
        return found


def ranked(results: list[CommandResult], quantity: str) -> tuple[int, list[tuple[int, Ratio]]] | None:
    """The index of the command with the least mean of ``quantity`` ('energy' or 'time'), and each other's ratio
    to it."""
    values = {index: [trial.wall_s for trial in result.used] if quantity == "time" else
              [trial.energy_j for trial in result.used if trial.energy_j is not None]  # a ratio: per item alike
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


def report(study: Study, results: list[CommandResult], stopped: str) -> list[str]:
    unit_name = "Energy per item" if study.args.items else "Energy per run"
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
                lines.append(f"  energy was not measured ({study.unmeasured_reason or 'no figures from the service'})")
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


def warning_lines(results: list[CommandResult]) -> list[str]:
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
def study_json(study: Study, results: list[CommandResult], stopped: str) -> dict[str, Any]:
    def ratios(quantity: str) -> list[dict[str, Any]]:
        found = ranked(results, quantity)
        if found is None:
            return []
        best, others = found
        return [{"base": results[best].name, "other": results[index].name, **asdict(value)}
                for index, value in others]

    return {"study": study.label, "seed": study.args.seed, "items": study.args.items, "stopped": stopped,
            "energyUnit": "J per item" if study.args.items else "J per run", "timeUnit": "s",
            "commands": [{"name": result.name, "command": result.command,
                          "time": asdict(result.time), "energy": asdict(result.energy) if result.energy else None,
                          "trials": [asdict(trial) for trial in result.used],
                          "excluded": [asdict(trial) for trial in result.excluded]} for result in results],
            "ratios": {"energy": ratios("energy"), "time": ratios("time")}}


def write_exports(args: argparse.Namespace, document: dict[str, Any]) -> None:
    if args.export_json:
        with open(args.export_json, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, default=lambda value: None)
    if args.export_csv:
        with open(args.export_csv, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            parts = ("mean", "stdev", "ci_low", "ci_high", "minimum", "maximum")
            writer.writerow(["command", "runs", "excluded", *(f"time_{part}_s" for part in parts),
                             *(f"energy_{part}_J" for part in parts)])
            for command in document["commands"]:
                energy = command["energy"] or {}
                writer.writerow([command["name"], command["time"]["n"], len(command["excluded"]),
                                 *(command["time"][part] for part in parts), *(energy.get(part) for part in parts)])
    if args.export_markdown:
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
        with open(args.export_markdown, "w", encoding="utf-8") as out:
            out.write("\n".join(rows) + "\n")


# -- the command ------------------------------------------------------------------------------------------------
def run_compare(args: argparse.Namespace) -> int:
    commands = split_commands(list(args.cmd))
    if len(commands) < 2:
        say("tsstats compare: name two or more commands, each after --: tsstats compare -- CMD_A ... -- CMD_B ...")
        return EXIT_USAGE
    names = list(args.name) or [shlex.join(command) for command in commands]
    if len(names) != len(commands):
        say(f"tsstats compare: --name was given {len(names)} times for {len(commands)} commands; give one each")
        return EXIT_USAGE
    missing = [command[0] for command in commands if not runnable(command)]
    if missing:
        say(f"tsstats compare: {missing[0]}: command not found or not executable; no trial was run")
        return NOT_FOUND
    keep_standard_descriptors()
    try:
        service = Service.from_environment(args.url, args.token, args.token_file)
    except ValueError as unreadable:
        say(f"tsstats compare: {unreadable}")
        return EXIT_USAGE
    study = Study(args, commands, names, service)
    order = random.Random(args.seed)
    stopped, code = "", 0
    try:
        for _ in range(args.warmup):
            for index in order.sample(range(len(commands)), len(commands)):
                if study.run_trial(index, 0).exit_code != 0:
                    return EXIT_FAILURE
        rounds = 0
        while True:
            rounds += 1
            for index in order.sample(range(len(commands)), len(commands)):
                if study.run_trial(index, rounds).exit_code != 0:
                    stopped, code = f"stopped in round {rounds}: a command failed", EXIT_FAILURE
                    break
            if code:
                break
            stopped = done(study, rounds)
            if stopped:
                break
    except KeyboardInterrupt:
        stopped, code = "cancelled with Ctrl-C: the trials done so far", INTERRUPTED
    results = study.results()
    for line in report(study, results, stopped):
        print(line)
    write_exports(args, study_json(study, results, stopped))
    if code == 0 and not all(result.used for result in results):
        return EXIT_FAILURE  # no verdict: every trial of a command was judged unfair
    return code


def done(study: Study, rounds: int) -> str:
    """Why the study stops after ``rounds`` rounds, or "" to run another."""
    args = study.args
    if args.runs != "auto":
        return f"{rounds} runs each" if rounds >= int(args.runs) else ""
    if rounds < args.min_runs:
        return ""
    results = study.results()
    found = ranked(results, "energy") or ranked(results, "time")
    widest = max((found_ratio.relative_half_width for _, found_ratio in found[1]), default=0.0) if found else 0.0
    if widest * 100.0 <= args.target_ci:
        return f"--runs auto: every ratio within ±{args.target_ci:g} % after {rounds} runs each"
    if rounds >= args.max_runs:
        return (f"--runs auto: stopped at --max-runs {args.max_runs}, the widest ratio interval ±{widest:.1%} "
                f"(target ±{args.target_ci:g} %)")
    return ""
