"""History query latency over the tiers, against the same query answered from raw samples.

    python benchmarks/bench_history.py [--days 30] [--hz 10] [--repeat 15] [--db PATH]

Writes synthetic history (30 days at 10 Hz by default, through `tsstats synth`'s write path) unless --db
names a file that already has it, then times a 1,000-point query of 4 metrics over the last hour, day, week
and 30 days (the tier each picks), and the same 30-day query forced onto raw samples, in the same run.
Prints the median of each. Targets: 30 days no more than 2x the last hour; at least 10x faster than raw.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tsstats.cli.synth import ProgressBar, synthesize
from tsstats.storage.history import parse_history_query, run_history
from tsstats.storage.rollups import Rollups
from tsstats.storage.store import Store

METRICS = "cpuUsage,memoryUsage,systemLoad,power"


def median_ms(store: Store, query, rollups: Rollups, repeat: int) -> float:
    store.read_now(run_history, query, rollups.minutes_until, rollups.hours_until)  # warm
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        store.read_now(run_history, query, rollups.minutes_until, rollups.hours_until)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--db", help="reuse this file (written by a previous run) instead of a new one")
    args = parser.parse_args()
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="bench-history-"), "history.duckdb")
    store = Store(path, memory_limit="1GB")
    if not store.read_now(lambda con: con.execute("SELECT count(*) FROM samples").fetchall()[0][0]):
        started = time.perf_counter()
        written = synthesize(store, args.days, args.hz, gpus=1,
                             progress=ProgressBar(f"synth {args.days:g} d at {args.hz:g} Hz"))
        print(f"wrote {written:,} samples in {time.perf_counter() - started:.0f} s to {path}")
    rollups = Rollups()
    rollups.load(store.writer)
    now = store.read_now(lambda con: con.execute("SELECT max(ts_ms) FROM samples").fetchall()[0][0]) / 1000.0
    results = {}
    print(f"1,000-point query of {METRICS}, median of {args.repeat}:")
    for label, span in (("hour", "-1h"), ("day", "-1d"), ("week", "-7d"), (f"{args.days:g} days", f"-{args.days:g}d")):
        query = parse_history_query({"metrics": [METRICS], "from": [span], "points": ["1000"],
                                     "agg": ["avg,max"]}, now)
        results[label] = median_ms(store, query, rollups, args.repeat)
        print(f"  last {label:8s} tier {query.tier:3s} step {query.step_ms / 1000:>6g} s  "
              f"{query.buckets:5d} buckets  {results[label]:8.2f} ms")
    longest = f"{args.days:g} days"
    query = parse_history_query({"metrics": [METRICS], "from": [f"-{args.days:g}d"], "points": ["1000"],
                                 "agg": ["avg,max"]}, now)
    raw = median_ms(store, dataclasses.replace(query, tier="raw"), rollups, max(3, args.repeat // 3))
    print(f"  last {longest:8s} from raw samples                       {raw:8.2f} ms")
    print(f"{longest} / hour: {results[longest] / results['hour']:.2f} (target <= 2)")
    print(f"raw / tiers for {longest}: {raw / results[longest]:.1f}x faster (target >= 10x)")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
