"""The statistics of a study on real processes, measured by a real service whose CPU energy comes from a fake RAPL
counter advanced at a constant power (so a trial's energy is its share of a known power over its window): the
same command twice is not called different, a command doing twice the work is, with a ratio near 2, and the
interval narrows as rounds are added."""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time

import pytest
from support.powercap import FakePowercap
from support.server import ServerProcess, run_cli

from tsstats.client.statistics import ratio

pytestmark = pytest.mark.quiet  # run alone, after the rest (scripts/test.sh)

WORK = f"{sys.executable} -c 'sum(i * i for i in range(600000))'"
LONG_WORK = WORK.replace("600000", "4000000")  # a trial's fixed costs (its record, a shell) small beside it
POWER_W = 20.0


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A service reading a RAPL package counter that a thread advances at POWER_W, every 5 ms."""
    root = tmp_path_factory.mktemp("rapl")
    tree = FakePowercap(root / "powercap", packages=1, dram=False)
    stop = threading.Event()

    def advance() -> None:
        energy_uj, last = 0.0, time.monotonic()
        while not stop.wait(0.005):
            now = time.monotonic()
            energy_uj += POWER_W * (now - last) * 1e6
            last = now
            for entry in ("intel-rapl:0", "intel-rapl:0:0"):
                tree.set(entry, int(energy_uj))

    thread = threading.Thread(target=advance, daemon=True)
    thread.start()
    server = ServerProcess(root / "study.duckdb", "--powercap-root", str(root / "powercap")).start()
    try:
        yield server
    finally:
        server.stop()
        stop.set()
        thread.join()


def study(url: str, path, *commands: str, runs: int = 6) -> dict:
    arguments = ["--runs", str(runs), "--warmup", "1", "--allow-unfair", "--max-wait", "0", "--export-json",
                 str(path)]
    for command in commands:
        arguments += ["--", "sh", "-c", command]
    result = run_cli("compare", "--url", url, *arguments)
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(path.read_text())
    assert all(trial["energy_j"] for command in document["commands"] for trial in command["trials"]), document
    return document


def test_the_same_command_twice_is_not_called_different(measured, tmp_path):
    """Three A/A studies: at 5 %, two or more false verdicts of three would happen about once in 140 tries on a
    machine whose load holds still. A trial's energy is its share of the machine's busy CPU time, so when other
    work comes and goes during a study (the rest of this suite, on 2 cores) the two commands' trials may really
    differ: a second set of three then decides, and a broken statistic fails both (about once in 20,000 tries)."""
    for attempt in range(2):
        verdicts = [study(measured.url, tmp_path / f"aa{attempt}{index}.json", WORK, WORK + " ")["ratios"]["energy"][0]
                    for index in range(3)]
        if sum(verdict["significant"] for verdict in verdicts) <= 1:
            break
    assert sum(verdict["significant"] for verdict in verdicts) <= 1, verdicts
    assert all(verdict["ci_low"] <= 1.0 or verdict["significant"] for verdict in verdicts), verdicts


def test_twice_the_work_is_called_significant_with_a_ratio_near_2_whose_interval_narrows(measured, tmp_path):
    document = study(measured.url, tmp_path / "double.json", LONG_WORK, f"{LONG_WORK}; {LONG_WORK}", runs=8)
    energy = document["ratios"]["energy"][0]
    # a trial's fixed costs (its record's commit and answer, the shell: some 20 ms) are not doubled, so the ratio
    # sits a little below 2: its interval held 2 in 5 of 8 tries here (1.82 to 2.05), within 10 % in all; on a
    # noisier day (spread 0.31) it read 2.21: near 2 is within 10 %, or 2 inside its own 95 % interval
    near = 1.8 <= energy["value"] <= 2.2 or energy["ci_low"] <= 2.0 <= energy["ci_high"]
    assert energy["significant"] and near and energy["ci_low"] <= 2.2, energy
    assert energy["other"] == shlex.join(["sh", "-c", f"{LONG_WORK}; {LONG_WORK}"])
    once, twice = ([trial["energy_j"] for trial in command["trials"]] for command in document["commands"])
    widths = [ratio(once[:rounds], twice[:rounds]).relative_half_width for rounds in (2, len(once))]
    assert widths[1] < widths[0], widths  # the same trials: 8 rounds against 2, Student's t 2.36/√8 against 12.7/√2
