"""Idle cost, polled like the dashboard and unpolled: tsstats on its defaults, tsstats held at 1 Hz and Glances, side
by side, with where tsstats' own CPU goes and the energy it gives itself.

    python benchmarks/bench_idle.py [--seconds 60] [--poll 3] [--glances-venv DIR]

All three run at once over the same window, each answered one GET every ``--poll`` seconds (the dashboard polls
every 3 s): tsstats' ``/api/dashboard/stats``, Glances' ``/api/4/all`` (Glances 4 as a REST server,
``glances -w --disable-webui -t 1``, pip-installed by this script into a temporary virtual environment unless
``--glances-venv`` names one that has it). "tsstats" runs on its defaults: 10 Hz while anyone looks (polled) and
1 Hz once nothing has asked for a minute; "tsstats 1 Hz" is held at 1 Hz throughout (``--sample-hz 1``). After the
polled window the polls stop, the script waits out the minute that keeps the full rate (and checks, through
``/metrics``, which does not raise it, that the rate came down), and a second window of the same length follows
with nobody polling. Printed per process: CPU as % of one core over each window, and memory from
``/proc/PID/smaps_rollup``: USS (private pages), PSS and RSS, read for tsstats on its defaults and Glances once
the 1 Hz tsstats has stopped (two tsstats would share their libraries' pages, which would then count as shared
rather than private, flattering USS). Then tsstats' own accounting over each window (``tsstats_self_*`` in
``/metrics``): its CPU by part of its work and the energy it gives itself by a run's attribution, per hour.
Targets (issue 32): unpolled, tsstats on its defaults <= 1.0 x Glances; polled at 10 Hz <= 0.6 x; tsstats' USS
<= Glances' + 45 MB (the DuckDB library's own code pages). RSS has no target: most of it is shared library pages.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import httpx
from servers import free_port, venv_with

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tsstats.sampling.sampler import FULL_RATE_HOLD_S  # noqa: E402  (after the checkout is on the path)


@dataclass
class Subject:
    name: str
    process: subprocess.Popen
    url: str
    polls: int = 0
    failures: int = 0


def cpu_seconds(pid: int) -> float:
    """User and system time of a process, all its threads included."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """USS (private clean + dirty), PSS and RSS in MB from smaps_rollup."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                values[key] = int(rest.split()[0])
    return {"uss": (values["Private_Clean"] + values["Private_Dirty"]) / 1024, "pss": values["Pss"] / 1024,
            "rss": values["Rss"] / 1024}


def wait_ready(subject: Subject, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subject.process.poll() is not None:
            raise RuntimeError(f"{subject.name} exited with {subject.process.returncode}")
        try:
            if httpx.get(subject.url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{subject.name} did not answer {subject.url}")


def glances_binary(venv: str | None, tmp: str) -> str:
    return os.path.join(venv_with(["glances[web]"], venv, tmp, "glances"), "bin", "glances")


def poll(subjects: list[Subject], every_s: float, stop: threading.Event) -> None:
    """One GET to each subject every ``every_s`` seconds, as the dashboard does."""
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            for subject in subjects:
                try:
                    ok = client.get(subject.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                subject.polls += 1
                subject.failures += 0 if ok else 1
            stop.wait(every_s)


def cpu_shares(subjects: list[Subject], seconds: float) -> dict[str, float]:
    """Each subject's CPU over the next ``seconds``, in % of one core."""
    start = {subject.name: cpu_seconds(subject.process.pid) for subject in subjects}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    return {subject.name: 100.0 * (cpu_seconds(subject.process.pid) - start[subject.name]) / elapsed
            for subject in subjects}


def ratio(value: float, reference: float) -> float:
    return value / reference if reference else float("inf")


DEFAULTS, HELD, GLANCES = "tsstats", "tsstats 1 Hz", "Glances -t 1"


def self_accounting(url: str) -> dict[str, float]:
    """tsstats' own counters (``tsstats_self_*``, and its rate) from /metrics, which does not raise the rate."""
    found: dict[str, float] = {}
    for line in httpx.get(url.replace("/api/dashboard/stats", "/metrics"), timeout=10).text.splitlines():
        if line.startswith("tsstats_self_cpu_seconds_total{"):
            found["cpu " + line.split('"')[1]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith(("tsstats_self_energy_joules_total ", "tsstats_sample_rate_hertz ")):
            found[line.split()[0]] = float(line.split()[1])
    return found


def accounting_lines(label: str, before: dict[str, float], after: dict[str, float], seconds: float) -> list[str]:
    """Where tsstats' own CPU went over a window (% of one core, by part) and the energy it gave itself per hour."""
    parts = {key[4:]: 100.0 * (after[key] - before.get(key, 0.0)) / seconds for key in after if key.startswith("cpu ")}
    joules = after["tsstats_self_energy_joules_total"] - before.get("tsstats_self_energy_joules_total", 0.0)
    shown = ", ".join(f"{part} {share:.3f}" for part, share in sorted(parts.items(), key=lambda item: -item[1]))
    return [f"  {label} at {after['tsstats_sample_rate_hertz']:g} Hz: {sum(parts.values()):.3f} % of a core by its "
            f"own count ({shown}); energy it gave itself {joules / seconds * 3600:.1f} J an hour"]


def report(polled: dict[str, float], unpolled: dict[str, float], memory: dict[str, dict[str, float]]) -> None:
    checks = [
        ("polled, tsstats / Glances", ratio(polled[DEFAULTS], polled[GLANCES]), 0.6),
        ("unpolled, tsstats / Glances", ratio(unpolled[DEFAULTS], unpolled[GLANCES]), 1.0),
        ("polled, 1 Hz / Glances", ratio(polled[HELD], polled[GLANCES]), 1.0),
        ("unpolled, 1 Hz / Glances", ratio(unpolled[HELD], unpolled[GLANCES]), 1.0),
    ]
    for label, value, target in checks:
        print(f"{label:28s} {value:5.2f} (target <= {target:g}): {'met' if value <= target else 'missed'}")
    extra = memory[DEFAULTS]["uss"] - memory[GLANCES]["uss"]
    print(f"{'USS, tsstats - Glances':28s} {extra:+5.1f} MB (target <= +45 MB): {'met' if extra <= 45 else 'missed'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window (default 60)")
    parser.add_argument("--poll", type=float, default=3.0, help="seconds between GETs to each (default 3)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after start-up before measuring")
    parser.add_argument("--glances-venv", help="a virtual environment with glances[web] (else a temporary one)")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-idle-")
    env = {key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")}
    subjects: list[Subject] = []
    try:
        glances = glances_binary(args.glances_venv, tmp)
        for name, rate in ((DEFAULTS, ()), (HELD, ("--sample-hz", "1"))):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", "tsstats", "serve", "--port", str(port), *rate,
                 "--db", os.path.join(tmp, f"{len(rate)}.duckdb"), "--log-level", "warning"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subjects.append(Subject(name, process, f"http://127.0.0.1:{port}/api/dashboard/stats"))
        port = free_port()
        process = subprocess.Popen([glances, "-w", "--disable-webui", "-t", "1", "--bind", "127.0.0.1", "--port",
                                    str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   cwd=tmp, env={**env, "HOME": tmp})
        subjects.append(Subject("Glances -t 1", process, f"http://127.0.0.1:{port}/api/4/all"))
        for subject in subjects:
            wait_ready(subject)
        stop = threading.Event()
        poller = threading.Thread(target=poll, args=(subjects, args.poll, stop), daemon=True)
        poller.start()
        time.sleep(args.settle)
        tsstats_url = subjects[0].url
        print(f"measuring {args.seconds:g} s, each polled every {args.poll:g} s ...", flush=True)
        before = self_accounting(tsstats_url)
        polled = cpu_shares(subjects, args.seconds)
        polled_own = accounting_lines("polled", before, self_accounting(tsstats_url), args.seconds)
        stop.set()
        poller.join(15)
        print(f"waiting {FULL_RATE_HOLD_S + 2:g} s: a request keeps the full rate for {FULL_RATE_HOLD_S:g} s ...",
              flush=True)
        time.sleep(FULL_RATE_HOLD_S + 2)
        print(f"measuring {args.seconds:g} s, nobody polling ...", flush=True)
        before = self_accounting(tsstats_url)
        unpolled = cpu_shares(subjects, args.seconds)
        unpolled_own = accounting_lines("unpolled", before, self_accounting(tsstats_url), args.seconds)
        one_hz = subjects[1]
        memory = {one_hz.name: memory_mb(one_hz.process.pid)}
        one_hz.process.terminate()  # alone, the other tsstats' library pages are its own: private, as they are
        one_hz.process.wait(20)
        time.sleep(2.0)
        memory.update({subject.name: memory_mb(subject.process.pid) for subject in subjects if subject is not one_hz})

        print(f"{'':14s} {'CPU % polled':>13s} {'unpolled':>9s} {'USS MB':>8s} {'PSS MB':>8s} {'RSS MB':>8s} "
              f"{'polls':>6s}")
        for subject in subjects:
            m = memory[subject.name]
            print(f"{subject.name:14s} {polled[subject.name]:13.3f} {unpolled[subject.name]:9.3f} {m['uss']:8.1f} "
                  f"{m['pss']:8.1f} {m['rss']:8.1f} {subject.polls - subject.failures:3d}/{subject.polls}")
        report(polled, unpolled, memory)
        print("tsstats on its defaults, by its own accounting:")
        print("\n".join(polled_own + unpolled_own))
    finally:
        for subject in subjects:
            subject.process.terminate()
            try:
                subject.process.wait(10)
            except subprocess.TimeoutExpired:
                subject.process.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
