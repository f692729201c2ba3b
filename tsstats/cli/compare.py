"""``tsstats compare [options] -- CMD_A ... -- CMD_B ...``: a study of two or more commands, as hyperfine runs
them, with each trial measured by the service.

Each command gets ``--warmup`` trials (measured, left out of the statistics), then ``--runs`` rounds in which every
command runs once, in an order shuffled for each round (``--seed`` makes it reproducible): drift of the machine
(heat, caches, other work) spreads over all commands instead of favouring the first. Each trial is a comparison of
the service naming this process (so the command and its children are measured), with the study in its metadata.
``--runs auto`` adds rounds until every ratio's 95 % interval is within ``--target-ci`` % or ``--max-runs`` is
reached. Before each trial it waits up to ``--max-wait`` for a quiet, cool machine; a trial the service judged
unfair (docs/conditions.md) is run again up to ``--retries`` times, and the unfair ones are left out of the
statistics, and said, unless ``--allow-unfair``; where every trial of a command was unfair, the figures of all
are printed under a plain statement and the exit status is 1. ``--idle-baseline`` measures the idle power first
and gives each energy also net of it. Without a service the commands still run and are timed, with one warning.

It prints, per command, energy per item (or per run) and time as mean ± σ, the 95 % interval and the range,
the runs used and those left out; then the command with the least energy and each other's ratio to it with its
interval and a verdict (Welch's t-test at the 5 % level), and the same for time; then the warnings
(``tsstats.client.statistics``). Exports: ``--export-json``, ``--export-csv``, ``--export-markdown``.
Standard library and ``tsstats.client`` only. Runs on the main thread.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable

from tsstats.cli.run import NOT_FOUND, command_service
from tsstats.cli.runtime import EXIT_FAILURE, EXIT_USAGE
from tsstats.client.service import say
from tsstats.client.study import Contender, Study, StudyOptions, finish_study, write_exports

INTERRUPTED = 130
OUTPUT_TAIL_LINES = 20


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
    """Whether the program exists and may be run: found on PATH, or a path to an executable file."""
    return shutil.which(command[0]) is not None


def command_trial(name: str, command: list[str]) -> Callable[[], int]:
    """One run of ``command``, its output kept aside and shown (the last lines) only when it fails."""
    def once() -> int:
        with tempfile.TemporaryFile() as output:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
            try:
                code = child.wait()
            except KeyboardInterrupt:
                child.kill()
                child.wait()
                raise
            if code != 0:
                output.seek(0)
                tail = output.read().decode("utf-8", "replace").splitlines()[-OUTPUT_TAIL_LINES:]
                say(f"tsstats compare: {name!r} exited with status {code}; its last output:")
                for line in tail:
                    say(f"  | {line}")
        return code

    return once


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
    service = command_service(args, "tsstats compare")
    if service is None:
        return EXIT_USAGE
    options = StudyOptions(runs=args.runs, warmup=args.warmup, items=args.items, seed=args.seed,
                           allow_unfair=args.allow_unfair, study=args.study, min_runs=args.min_runs,
                           max_runs=args.max_runs, target_ci=args.target_ci, max_wait=args.max_wait,
                           retries=args.retries, idle_baseline=args.idle_baseline or 0.0)
    study = Study([Contender(name, command, command_trial(name, command)) for name, command in zip(names, commands,
                                                                                                   strict=True)],
                  options, service, who="tsstats compare")
    code = 0
    try:
        stopped, failed = study.run()
        code = EXIT_FAILURE if failed else 0
    except KeyboardInterrupt:
        stopped, code = "cancelled with Ctrl-C: the trials done so far", INTERRUPTED
    result = finish_study(study, stopped)
    print(result)
    write_exports(result.document, args.export_json, args.export_csv, args.export_markdown)
    if code == 0 and not result.fair:
        return EXIT_FAILURE  # no fair verdict: every trial of a command was judged unfair
    return code
