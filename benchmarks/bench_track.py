"""What measuring a run costs and what it reports: one CPU workload (NumPy matrix work plus a subprocess worker
burning a core, about 10 s) run three ways in the same run: unmeasured, under ``tsstats.track`` with the
service running, and under CodeCarbon's ``OfflineEmissionsTracker`` (installed into a temporary virtual
environment, never a dependency of tsstats), given the same country as tsstats' grid region.

    python benchmarks/bench_track.py [--seconds 10] [--rounds 3] [--region FRA] [--codecarbon-venv DIR]

Each way runs ``--rounds`` times, alternating; medians are compared. Prints each one's wall-time overhead
against the unmeasured run, the energy each reports, and RAPL's own counter delta where it is readable.
First, ``--idle-windows`` empty runs through ``tsstats.track`` with nothing else running: a window's start plus
end on an idle machine. Targets: tsstats' overhead under 1 % of the run, and under 20 ms per window (start plus
end) on the idle machine; the window beside the workload's burners is printed too.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from servers import start_timed, stop, venv_with  # noqa: E402

WORKLOAD = r"""
import json, os, subprocess, sys, time
import numpy as np

seconds, way, region = float(sys.argv[1]), sys.argv[2], sys.argv[3]

def work():
    burn = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass"
    worker = subprocess.Popen([sys.executable, "-c", burn])
    a = np.random.default_rng(1).random((300, 300))
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a = np.tanh(a @ a.T / 300.0)
    worker.wait()

report = {"way": way}
started = time.perf_counter()
if way == "none":
    work()
elif way == "tsstats":
    import tsstats
    tracker = tsstats.track(models=["bench"], name="bench_track", required=True)
    opened = time.perf_counter()
    run = tracker.__enter__()
    report["open_ms"] = (time.perf_counter() - opened) * 1000
    work()
    closing = time.perf_counter()
    tracker.__exit__(None, None, None)
    report["close_ms"] = (time.perf_counter() - closing) * 1000
    report["energy_j"] = run.energy_j
    report["machine_j"] = run.record["machineEnergyKwh"] * 3.6e6
    report["methods"] = run.record["methods"]
    report["carbon_g"] = run.carbon_g
elif way == "codecarbon":
    from codecarbon import OfflineEmissionsTracker
    tracker = OfflineEmissionsTracker(country_iso_code=region, save_to_file=False, log_level="error")
    opened = time.perf_counter()
    tracker.start()
    report["open_ms"] = (time.perf_counter() - opened) * 1000
    work()
    closing = time.perf_counter()
    kg = tracker.stop()
    report["close_ms"] = (time.perf_counter() - closing) * 1000
    report["energy_j"] = tracker.final_emissions_data.energy_consumed * 3.6e6
    report["carbon_g"] = kg * 1000
report["wall_s"] = time.perf_counter() - started
print(json.dumps(report))
"""

IDLE_WINDOWS = r"""
import json, statistics, sys, time
import tsstats

windows = []
for number in range(int(sys.argv[1])):
    tracker = tsstats.track(models=["bench"], name="idle window", required=True)
    opened = time.perf_counter()
    tracker.__enter__()
    opening = time.perf_counter() - opened
    time.sleep(0.3)
    closing = time.perf_counter()
    tracker.__exit__(None, None, None)
    windows.append((opening + time.perf_counter() - closing) * 1000)
print(json.dumps(windows))
"""


def rapl_uj() -> int | None:
    """The package counters' sum, where this user can read them."""
    total = 0
    paths = glob.glob("/sys/class/powercap/intel-rapl:[0-9]*/energy_uj")
    try:
        for path in paths:
            with open(path, encoding="ascii") as handle:
                total += int(handle.read())
    except OSError:
        return None
    return total if paths else None


def run_way(python: str, way: str, seconds: float, region: str, env: dict[str, str]) -> dict:
    before = rapl_uj()
    done = subprocess.run([python, "-c", WORKLOAD, str(seconds), way, region], capture_output=True, text=True,
                          env=env, timeout=seconds * 10 + 120)
    after = rapl_uj()
    if done.returncode != 0:
        raise RuntimeError(f"{way} failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if before is not None and after is not None and after >= before:
        report["rapl_j"] = (after - before) / 1e6
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--region", default="FRA", help="the grid region of both (ISO 3166-1 alpha-3)")
    parser.add_argument("--idle-windows", type=int, default=30, help="empty runs measured first, nothing else running")
    parser.add_argument("--codecarbon-venv", help="a virtual environment with codecarbon and numpy (else a new one)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-track-")
    venv = venv_with(["codecarbon", "numpy"], args.codecarbon_venv, tmp, "codecarbon")
    pythons = {"none": sys.executable, "tsstats": sys.executable, "codecarbon": os.path.join(venv, "bin", "python")}
    service, ready_s, _ = start_timed([sys.executable, "-m", "tsstats"], os.path.join(tmp, "track.duckdb"),
                                      dict(os.environ), extra=("--grid-region", args.region))
    port = service.args[service.args.index("--port") + 1]
    env = {**os.environ, "PYTHONPATH": ROOT, "TSSTATS_URL": f"http://127.0.0.1:{port}"}
    print(f"tsstats serving on port {port}, ready in {ready_s:.2f} s", flush=True)
    results: dict[str, list[dict]] = {way: [] for way in pythons}
    try:
        done = subprocess.run([sys.executable, "-c", IDLE_WINDOWS, str(args.idle_windows)], capture_output=True,
                              text=True, env=env, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"the idle windows failed: {done.stderr[-2000:]}")
        idle = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {len(idle)} empty windows on the idle machine: start + end median {statistics.median(idle):.1f} ms "
              f"(min {min(idle):.1f}, max {max(idle):.1f})", flush=True)
        for round_number in range(args.rounds):
            for way, python in pythons.items():
                report = run_way(python, way, args.seconds, args.region, env)
                results[way].append(report)
                print(f"  round {round_number + 1} {way:10s} wall {report['wall_s']:7.3f} s"
                      + (f"  energy {report['energy_j']:8.1f} J" if "energy_j" in report else "")
                      + (f"  rapl {report['rapl_j']:8.1f} J" if "rapl_j" in report else ""), flush=True)
    finally:
        stop(service)
    base = statistics.median(r["wall_s"] for r in results["none"])
    print(f"unmeasured: median wall {base:.3f} s")
    for way in ("tsstats", "codecarbon"):
        runs = results[way]
        wall = statistics.median(r["wall_s"] for r in runs)
        window = statistics.median(r["open_ms"] + r["close_ms"] for r in runs)
        energy = statistics.median(r["energy_j"] for r in runs)
        print(f"{way:10s} median wall {wall:.3f} s: overhead {100 * (wall - base) / base:+.2f} % of the run; "
              f"start + end {window:.1f} ms; energy {energy:.1f} J")
        if way == "tsstats":
            machine = statistics.median(r["machine_j"] for r in runs)
            print(f"           the machine over the same windows {machine:.1f} J (methods {runs[0]['methods']}); "
                  f"the run's share {100 * energy / machine:.1f} %")
    rapl = [r["rapl_j"] for r in results["none"] if "rapl_j" in r]
    print(f"RAPL package counters over the unmeasured run: {statistics.median(rapl):.1f} J" if rapl else
          "RAPL counters not readable here: no counter delta to compare with")
    tsstats = results["tsstats"]
    overhead = 100 * (statistics.median(r["wall_s"] for r in tsstats) - base) / base
    window = statistics.median(r["open_ms"] + r["close_ms"] for r in tsstats)
    quiet = statistics.median(idle)
    print(f"tsstats overhead {overhead:+.2f} % (target < 1 %): {'met' if overhead < 1 else 'missed'}; "
          f"{quiet:.1f} ms a window on the idle machine (target < 20 ms): {'met' if quiet < 20 else 'missed'}; "
          f"{window:.1f} ms beside the workload's two burners")
    return 0


if __name__ == "__main__":
    sys.exit(main())
