"""Retention working off a backlog: what a pass costs as the backlog grows, against a pass that sorts the backlog.

    python benchmarks/bench_retention.py [--days 30] [--hz 10] [--keep-days 1]

Builds a file of ``--days`` of raw samples at ``--hz`` ending now (a copy for each contender), keeps
``--keep-days`` of them, and runs retention's passes back to back until nothing is left to delete:

- tsstats: ``retention.enforce_retention`` with the ``Floors`` the sampler keeps (each table's oldest time found
  once; a pass deletes the span that last held about RETENTION_ROWS rows);
- baseline: the pass tsstats ran before, which found its bound by sorting the backlog for its RETENTION_ROWS-th
  row (``ORDER BY ... LIMIT 1 OFFSET``), so that each pass cost grows with what is left.

Printed for each: passes, rows deleted, process CPU in all and per pass (first three, last three, in ms), and
the ratio of the baseline's CPU to tsstats'. The sampler runs a pass a second while a backlog lasts, so the
passes are also the backlog's seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from tsstats.storage import retention  # noqa: E402  (after the checkout is on the path)
from tsstats.storage.sql import first  # noqa: E402
from tsstats.storage.store import Store  # noqa: E402


def build(path: str, days: float, hz: float) -> None:
    store = Store(path)
    count = int(days * 86_400 * hz)
    now_ms = int(time.time() * 1000)
    store.transaction(lambda con: con.execute(
        "INSERT INTO samples (ts_ms, interval_ms, cpu_pm) SELECT ? - (? - i) * ?, ?, i % 1000 FROM range(?) r(i)",
        [now_ms, count, int(1000 / hz), int(1000 / hz), count]))
    store.checkpoint()
    store.close()


def sorting_pass(con, policy, now_ms: float, minutes_until) -> int:
    """The baseline: each table's bound is its backlog's RETENTION_ROWS-th row, found by a sort."""
    deleted = 0
    for table, column, cut in retention.retention_deletes(policy, now_ms, minutes_until):
        past = con.execute(f"SELECT {column} FROM {table} WHERE {column} < ? ORDER BY {column} LIMIT 1 OFFSET ?",
                           [cut, retention.RETENTION_ROWS]).fetchall()
        bound = int(past[0][0]) if past else cut
        gone = first(con.execute(f"DELETE FROM {table} WHERE {column} < ?", [bound]).fetchall())[0]
        if past and not gone:
            gone = first(con.execute(f"DELETE FROM {table} WHERE {column} <= ?", [bound]).fetchall())[0]
        deleted += gone
    return deleted


def work_off(path: str, keep_days: float, run_pass) -> dict:
    store = Store(path)
    policy = retention.RetentionPolicy(raw_s=keep_days * 86_400, minute_s=90 * 86_400, hour_s=5 * 365 * 86_400)
    now_ms = time.time() * 1000
    costs, deleted = [], 0
    started = time.process_time()
    while True:
        before = time.process_time()
        gone = store.transaction(lambda con: run_pass(con, policy, now_ms, None))
        costs.append((time.process_time() - before) * 1000)
        deleted += gone
        if not gone:
            break
    total = time.process_time() - started
    store.close()
    return {"passes": len(costs) - 1, "deleted": deleted, "cpu_s": total, "first": costs[:3], "last": costs[-4:-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--keep-days", type=float, default=1.0)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="tsstats-retention-")
    try:
        source = os.path.join(directory, "built.duckdb")
        started = time.monotonic()
        build(source, args.days, args.hz)
        print(f"{args.days:g} days at {args.hz:g} Hz built in {time.monotonic() - started:.1f} s; keeping "
              f"{args.keep_days:g} day(s)")
        results = {}
        floors = retention.Floors()
        contenders = {"tsstats": lambda con, policy, now_ms, until: retention.enforce_retention(
                          con, policy, now_ms, until, floors),
                      "baseline (a sort a pass)": sorting_pass}
        for name, run_pass in contenders.items():
            path = os.path.join(directory, "copy.duckdb")
            shutil.copyfile(source, path)
            results[name] = found = work_off(path, args.keep_days, run_pass)
            os.remove(path)
            print(f"  {name:26s} {found['passes']:6d} passes, {found['deleted']:,} rows, CPU {found['cpu_s']:.2f} s "
                  f"({found['cpu_s'] * 1000 / max(found['passes'], 1):.2f} ms a pass; first "
                  f"{', '.join(f'{cost:.1f}' for cost in found['first'])}, last "
                  f"{', '.join(f'{cost:.1f}' for cost in found['last'])} ms)")
        ratio = results["baseline (a sort a pass)"]["cpu_s"] / max(results["tsstats"]["cpu_s"], 1e-9)
        print(f"baseline CPU / tsstats CPU: {ratio:.1f}x")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
