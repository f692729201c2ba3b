"""The one-file executable against the installed package, side by side: size on disk, time from exec to the
first 200 of the stats route, and memory (USS, PSS, RSS of the process tree) after 30 s.

    bash scripts/build-binary.sh && python benchmarks/bench_startup.py [--starts 5] [--settle 30]

The binary is dist/tsstats; the package is the same build's .venv-build/bin/tsstats. PyInstaller's one-file
mode unpacks itself into a temporary directory at every start, which is the difference in start-up time;
``--onedir DIR`` adds a one-folder build (``pyinstaller --onedir``) to the comparison.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from servers import start_timed, stop

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree_size_mb(path: str) -> float:
    if os.path.isfile(path):
        return os.path.getsize(path) / 1e6
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 1e6


def descendants(pid: int) -> list[int]:
    found = [pid]
    for child in os.listdir("/proc"):
        if child.isdigit():
            try:
                with open(f"/proc/{child}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == pid:
                found += descendants(int(child))
    return found


def memory_mb(pid: int) -> tuple[float, float, float]:
    """USS, PSS and RSS in MB of a process and its children (the one-file bootloader and its Python)."""
    uss = pss = rss = 0
    for member in descendants(pid):
        with open(f"/proc/{member}/smaps_rollup") as handle:
            values = {line.split(":")[0]: int(line.split()[1]) for line in handle if ":" in line and
                      line.split()[1].isdigit()}
        uss += values["Private_Clean"] + values["Private_Dirty"]
        pss += values["Pss"]
        rss += values["Rss"]
    return uss / 1024, pss / 1024, rss / 1024


def start(command: list[str], env: dict[str, str], work: str) -> tuple[subprocess.Popen, float]:
    process, seconds, status = start_timed(command, os.path.join(work, f"{time.monotonic_ns()}.duckdb"), env, work)
    if status != 200:
        raise RuntimeError(f"{command[0]} answered {status} first")
    return process, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--settle", type=float, default=30.0, help="seconds before memory is read")
    parser.add_argument("--onedir", help="a one-folder build's directory (holding its tsstats) to compare too")
    args = parser.parse_args()
    binary = os.path.join(ROOT, "dist", "tsstats")
    package = os.path.join(ROOT, ".venv-build", "bin", "tsstats")
    if not (os.path.exists(binary) and os.path.exists(package)):
        print("build first: bash scripts/build-binary.sh", file=sys.stderr)
        return 2
    site = os.path.join(ROOT, ".venv-build", "lib")
    subjects = {"binary (one file)": ([binary], tree_size_mb(binary)),
                "installed package": ([package], tree_size_mb(site))}
    if args.onedir:
        subjects["one folder"] = ([os.path.join(args.onedir, "tsstats")], tree_size_mb(args.onedir))
    work = tempfile.mkdtemp(prefix="bench-startup-")
    env = {"PATH": "/usr/bin:/bin", "HOME": work}
    try:
        times: dict[str, list[float]] = {name: [] for name in subjects}
        for _ in range(args.starts):  # alternate, so drifts of the machine hit all alike
            for name, (command, _) in subjects.items():
                process, seconds = start(command, env, work)
                times[name].append(seconds * 1000)
                stop(process)
        running = {name: start(command, env, work)[0] for name, (command, _) in subjects.items()}
        time.sleep(args.settle)
        memory = {name: memory_mb(process.pid) for name, process in running.items()}
        for process in running.values():
            stop(process)
        print(f"{'':20s} {'size MB':>8s} {'first 200 ms (median, range)':>30s} {'USS MB':>7s} {'PSS MB':>7s} "
              f"{'RSS MB':>7s}")
        for name, (_, size) in subjects.items():
            ms = times[name]
            uss, pss, rss = memory[name]
            print(f"{name:20s} {size:8.1f} {statistics.median(ms):12.0f} ({min(ms):5.0f} to {max(ms):5.0f}) "
                  f"{uss:7.1f} {pss:7.1f} {rss:7.1f}")
        binary_ms = statistics.median(times["binary (one file)"])
        package_ms = statistics.median(times["installed package"])
        print(f"the one-file start costs {binary_ms - package_ms:.0f} ms more than the package's "
              f"(unpacking into a temporary directory)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
