"""Bytes per stored value: the database file's size over the values it holds, every tier counted.

    python benchmarks/bench_storage.py [--days 7] [--hz 10] [--gpus 1]

Writes synthetic history through `tsstats synth`'s write path into a new file, checkpoints, and divides the
file size by the number of non-NULL values in every table (samples, per-GPU samples, both rollup tiers of
each, outages). Target: <= 0.8 bytes per value (Prometheus documents 1-2 bytes per sample). The baseline
printed beside it is the same values as 8-byte doubles, uncompressed. The history is written twice, without
and with the conditions' columns (docs/conditions.md), and the bytes per sample of both are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from tsstats.cli.synth import ProgressBar, synthesize
from tsstats.storage.store import Store

TABLES = ("samples", "gpu_samples", "rollup_1m", "rollup_1h", "gpu_rollup_1m", "gpu_rollup_1h", "outages")


def non_null_values(con, table: str) -> tuple[int, int]:
    columns = [row[0] for row in con.execute(f"SELECT column_name FROM duckdb_columns() WHERE table_name = "
                                             f"'{table}'").fetchall()]
    counts = ", ".join(f"count({column})" for column in columns)
    row = con.execute(f"SELECT count(*), {counts} FROM {table}").fetchall()[0]
    return int(row[0]), int(sum(row[1:]))


def measure(args: argparse.Namespace, conditions: bool) -> tuple[int, int, int]:
    """(file bytes, values, samples) of the synthetic history, with or without the conditions' columns."""
    path = os.path.join(tempfile.mkdtemp(prefix="bench-storage-"), "storage.duckdb")
    store = Store(path, memory_limit="1GB")
    started = time.perf_counter()
    label = "with" if conditions else "without"
    written = synthesize(store, args.days, args.hz, gpus=args.gpus, conditions=conditions,
                         progress=ProgressBar(f"synth {args.days:g} d at {args.hz:g} Hz, {label} the conditions"))
    print(f"{label} the conditions: wrote {written:,} samples ({args.days:g} days at {args.hz:g} Hz, {args.gpus} "
          f"GPUs) in {time.perf_counter() - started:.0f} s")
    store.checkpoint()
    total_values = 0
    for table in TABLES:
        rows, values = store.read_now(non_null_values, table)
        total_values += values
        print(f"  {table:14s} {rows:>12,} rows {values:>14,} values")
    store.close()
    size = os.path.getsize(path)
    wal = path + ".wal"
    if os.path.exists(wal):
        size += os.path.getsize(wal)
    print(f"  file size {size:,} bytes for {total_values:,} values: {size / total_values:.3f} bytes per value, "
          f"{size / written:.2f} bytes per sample")
    return size, total_values, written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--gpus", type=int, default=1)
    args = parser.parse_args()
    before, before_values, samples = measure(args, conditions=False)
    size, total_values, _ = measure(args, conditions=True)
    print(f"bytes per value: {size / total_values:.3f} with the conditions (target <= 0.8), "
          f"{before / before_values:.3f} without; as raw doubles: 8.000, ratio {8.0 / (size / total_values):.1f}x")
    print(f"bytes per sample: {size / samples:.2f} with the conditions, {before / samples:.2f} without: "
          f"+{(size - before) / samples:.2f} bytes for the 21 columns read once a second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
