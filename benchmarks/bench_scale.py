"""Costs that do not grow with the work: the stats, /metrics and /api/models at 1,000, 100,000 and 1,000,000
comparisons, each under a steady writer, with each figure's ratio to the 1,000 one.

    python benchmarks/bench_scale.py [--sizes 1000,100000,1000000] [--seconds 8] [--writes-per-s 20]

For each size a new database gets that many finished comparisons (50 models; accuracy, speed, latency, items
and energy reported; created one a second back from now) written in bulk by DuckDB, with the per-model counters
to match (through the API a million would take most of an hour; the writer below goes through it). A service
opens it; while a steady writer creates and completes comparisons through the API at ``--writes-per-s``, the
stats (every write makes the next GET build them afresh), ``/metrics`` and ``/api/models`` (the page's
``-30d``) are asked for in turn, back to back, for ``--seconds`` each. Printed per size: p50 and p95 of each,
the age of the stats body when it arrived (now less its ``generatedAt``), the service's start-up, and each p50's
ratio to the 1,000's. Target: the stats, /metrics and /api/models alike at every size (ratio <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime

import httpx
from servers import start_timed, stop

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from tsstats.storage.store import Store  # noqa: E402  (after the checkout is on the path)

MODELS = 50
ROUTES = ("/api/dashboard/stats", "/metrics", "/api/models?from=-30d")


def fill(db: str, size: int) -> None:
    """``size`` finished comparisons and the per-model counters that match them, in one transaction."""
    store = Store(db)
    now_ms = int(time.time() * 1000)

    def write(con) -> None:
        con.execute(
            "INSERT INTO comparisons (name, models, status, created_ms, started_ms, finished_ms, accuracy, speed, "
            "latency_ms, energy_kwh, carbon_kg, items, fair, ended_by) "
            "SELECT 'bulk ' || i, ['model-' || (i % ?)], 'completed', t - 1000, t - 1000, t, 50 + i % 50, "
            "10 + i % 7, 100 + i % 13, (1 + i % 5) / 3.6e6, (1 + i % 5) * 4e-7, 100, true, 'client' "
            "FROM (SELECT i, ? - (? - i) * 1000 AS t FROM range(?) r(i))", [MODELS, now_ms, size, size])
        con.execute(
            "INSERT INTO model_counters (model, completed, finished_total, energy_j_total, active_ms) "
            "SELECT model, count(*), count(*), sum(energy_kwh) * 3.6e6, max(finished_ms) FROM "
            "(SELECT unnest(models) AS model, energy_kwh, finished_ms FROM comparisons) GROUP BY model")

    store.transaction(write)
    store.checkpoint()
    store.close()


def writer(url: str, per_s: float, stop_event: threading.Event, written: list[int]) -> None:
    """Create and complete a comparison through the API ``per_s`` times a second until stopped."""
    with httpx.Client(base_url=url, timeout=30) as client:
        number = 0
        while not stop_event.is_set():
            started = time.monotonic()
            record = client.post("/api/comparisons", json={"models": [f"model-{number % MODELS}"],
                                                           "status": "running", "items": 100}).json()
            client.patch(f"/api/comparisons/{record['id']}", json={"status": "completed", "accuracy": 70.0,
                                                                   "speed": 12.0, "latencyMs": 90.0})
            number += 1
            written[0] += 1
            stop_event.wait(max(0.0, 1.0 / per_s - (time.monotonic() - started)))


def timed(url: str, path: str, seconds: float) -> tuple[list[float], list[float]]:
    """Latencies (ms) of back-to-back GETs for ``seconds``; for the stats, the bodies' ages too (ms)."""
    latencies, ages = [], []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response = client.get(path)
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            if path == "/api/dashboard/stats":
                generated = datetime.fromisoformat(response.json()["meta"]["generatedAt"].replace("Z", "+00:00"))
                ages.append(time.time() * 1000 - generated.timestamp() * 1000)
    return latencies, ages


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000", help="comparisons in each database")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of GETs per route and size")
    parser.add_argument("--writes-per-s", type=float, default=20.0, help="the steady writer's pace")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    env = {**{key: value for key, value in os.environ.items() if not key.startswith("TSSTATS_")},
           "PYTHONPATH": ROOT}
    tmp = tempfile.mkdtemp(prefix="bench-scale-")
    results: dict[int, dict[str, float]] = {}
    try:
        for size in sizes:
            db = os.path.join(tmp, f"{size}.duckdb")
            started = time.monotonic()
            fill(db, size)
            filled_s = time.monotonic() - started
            process, ready_s, _ = start_timed([sys.executable, "-m", "tsstats"], db, env,
                                              extra=("--log-level", "warning"))
            url = f"http://127.0.0.1:{process.args[process.args.index('--port') + 1]}"
            stop_event, written = threading.Event(), [0]
            thread = threading.Thread(target=writer, args=(url, args.writes_per_s, stop_event, written), daemon=True)
            thread.start()
            figures: dict[str, float] = {}
            try:
                for path in ROUTES:
                    latencies, ages = timed(url, path, args.seconds)
                    figures[f"{path} p50"] = statistics.median(latencies)
                    figures[f"{path} p95"] = percentile(latencies, 0.95)
                    if ages:
                        figures["stats age max"] = max(ages)
            finally:
                stop_event.set()
                thread.join(30)
                stop(process)
            results[size] = figures
            print(f"{size:>9,} comparisons (filled in {filled_s:.1f} s, service up in {ready_s:.2f} s, "
                  f"{written[0]} written meanwhile)", flush=True)
            for path in ROUTES:
                print(f"  {path:24s} p50 {figures[f'{path} p50']:8.2f} ms  p95 {figures[f'{path} p95']:8.2f} ms")
            print(f"  {'stats body age':24s} max {figures['stats age max']:8.1f} ms")
        base = results[sizes[0]]
        print(f"\nratio of each p50 to the {sizes[0]:,} one:")
        for size in sizes[1:]:
            ratios = "  ".join(f"{path} {results[size][f'{path} p50'] / base[f'{path} p50']:.2f}x" for path in ROUTES)
            print(f"  {size:>9,}: {ratios}")
        worst = max(results[size][f"{path} p50"] / base[f"{path} p50"] for size in sizes[1:]
                    for path in ROUTES) if len(sizes) > 1 else 1.0
        print(f"stats, /metrics and /api/models, worst ratio {worst:.2f} (target <= 1.5): "
              f"{'met' if worst <= 1.5 else 'missed'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
