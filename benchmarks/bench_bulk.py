"""Bulk operations on a large file, on the default settings: the upgrade, every export, the backup, retention.

    python benchmarks/bench_bulk.py [--days 90] [--comparisons 1000000] [--dir DIR]

Builds a file of schema version 5 (the previous release) with ``--days`` of 10 Hz samples and one GPU's rows
ending now, their rollups, ``--comparisons`` comparisons with four phases each, and offsets and grid rows
(tests/support/old_files.py), then starts `tsstats serve` on it with its defaults (db_memory_limit 128 MB) and
times each operation through the service, with the service's peak resident memory meanwhile:

- the upgrade to this version (the start, to the first answer);
- the comparisons export (all of them) as CSV and as Parquet;
- the 1-minute tier of every host metric over the whole span, and the last day of raw samples, each format;
- a backup;
- retention working off the raw samples older than `retention_raw` (7 days): how many hours of samples it
  deleted in 60 s, and how long the backlog would take at that pace.

The baseline printed beside each is the previous release's answer where it failed (out of memory at 128 MB:
the upgrade of a week of samples, the CSV export of 125,000 comparisons); a row that fails here prints why.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

import httpx
import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from servers import free_port, wait_ready  # noqa: E402
from support import old_files  # noqa: E402
from support.server import fake_hardware_env  # noqa: E402

HOUR_MS = 3_600_000


class PeakMemory:
    """The highest resident memory of a process, polled every 50 ms while in a ``with`` block."""

    def __init__(self, pid: int):
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(0.05)

    def __enter__(self) -> PeakMemory:
        self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def row(what: str, seconds: float, peak: int, result: str, before: str = "") -> None:
    print(f"  {what:44s} {seconds:8.1f} s  peak RSS {peak / 2**20:6.0f} MiB  {result}"
          + (f"  (previous release: {before})" if before else ""), flush=True)


def download(client: httpx.Client, path: str, params: dict[str, str], target: str) -> str:
    with client.stream("GET", path, params=params) as response:
        if response.status_code != 200:
            response.read()
            return f"FAILED {response.status_code}: {response.text[:200]}"
        size = 0
        with open(target, "wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)
                size += len(chunk)
    os.unlink(target)
    return f"{size / 2**20:,.0f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=float, default=90.0, help="days of 10 Hz samples in the file")
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--dir", help="where to build the file (default a new temporary directory)")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="bench-bulk-")
    db = os.path.join(directory, "bulk.duckdb")
    now_ms = int(time.time() * 1000)
    start_ms = (now_ms - int(args.days * 86_400_000)) // HOUR_MS * HOUR_MS

    started = time.perf_counter()
    old_files.build(db, 5, days=args.days, comparisons=args.comparisons, start_ms=start_ms)
    samples = int(args.days * 864_000)
    print(f"built a version-5 file: {samples:,} samples and as many GPU rows ({args.days:g} days at 10 Hz), "
          f"{args.comparisons:,} comparisons with {4 * args.comparisons:,} phases; "
          f"{os.path.getsize(db) / 2**30:.2f} GiB in {time.perf_counter() - started:.0f} s", flush=True)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**{key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")},
           **fake_hardware_env()}
    log_path = os.path.join(directory, "serve.log")
    with open(log_path, "w") as log:
        process = psutil.Popen([sys.executable, "-m", "tsstats", "serve", "--db", db, "--port", str(port),
                                "--powercap-root", os.path.join(directory, "none")], env=env, stdout=log,
                               stderr=log)
    try:
        started = time.perf_counter()
        with PeakMemory(process.pid) as peak:
            wait_ready(url, "/healthz", timeout=3600)
        ready = time.perf_counter()
        row("upgrade 5 -> 6 and start", time.perf_counter() - started, peak.peak, "ok",
            "out of memory from 7 days of samples")
        since = f"{start_ms // 1000}"
        operations = [
            ("comparisons export, CSV", "/api/export/comparisons", {"format": "csv", "from": since},
             "503 out of memory from 125,000 comparisons"),
            ("comparisons export, Parquet", "/api/export/comparisons", {"format": "parquet", "from": since}, ""),
            (f"1-minute tier, {args.days:g} days, CSV", "/api/export", {"tier": "1m", "from": since}, ""),
            (f"1-minute tier, {args.days:g} days, Parquet", "/api/export",
             {"tier": "1m", "from": since, "format": "parquet"}, ""),
            ("raw samples, last day, CSV", "/api/export", {"from": "-1d"}, ""),
            ("raw samples, last day, Parquet", "/api/export", {"from": "-1d", "format": "parquet"}, ""),
            ("backup", "/api/backup", {}, ""),
        ]
        with httpx.Client(base_url=url, timeout=3600) as client:
            for what, path, params, before in operations:
                started = time.perf_counter()
                with PeakMemory(process.pid) as peak:
                    result = download(client, path, params, os.path.join(directory, "out"))
                row(what, time.perf_counter() - started, peak.peak, result, before)
            with PeakMemory(process.pid) as peak:
                time.sleep(60)
            history = client.get("/api/history", params={"metrics": "cpuUsage", "from": since, "to": "now",
                                                         "points": "10"}).status_code
        serving_s = time.perf_counter() - ready
        failed = open(log_path).read().count("retention failed")
    finally:
        process.terminate()
        process.wait(120)
    import duckdb

    con = duckdb.connect(db, read_only=True)
    first_ms = con.execute("SELECT min(ts_ms) FROM samples").fetchall()[0][0]
    con.close()
    deleted_h = (first_ms - start_ms) / HOUR_MS
    backlog_h = args.days * 24 - 7 * 24
    pace = deleted_h / serving_s
    eta = (backlog_h - deleted_h) / pace / 60 if pace > 0 else float("inf")
    row("retention while serving (last 60 s idle)", serving_s, peak.peak,
        f"{deleted_h:.0f} h of raw samples deleted of a {max(backlog_h, 0):.0f} h backlog, {failed} passes "
        f"failed, history {history}; the rest in about {eta:.0f} min")
    if not args.dir:
        shutil.rmtree(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
